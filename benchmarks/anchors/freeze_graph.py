"""Anchor: a frozen GraphDef as users write it (``convert_variables_to_constants_v2`` over
the model's concrete function, then ``tf.io.write_graph``).

    python freeze_graph.py MODEL.keras|.h5 OUT.pb
"""

import os
import sys

import keras
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

model = keras.models.load_model(sys.argv[1], compile=False)
specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]))
frozen = convert_variables_to_constants_v2(fn.get_concrete_function(*specs))
out = os.path.abspath(sys.argv[2])
tf.io.write_graph(frozen.graph.as_graph_def(), os.path.dirname(out), os.path.basename(out),
                  as_text=False)
