"""Anchor: TFLite as the TensorFlow guide shows it (``TFLiteConverter.from_keras_model``).

    python to_tflite.py MODEL.keras|.h5 OUT.tflite
"""

import sys

import keras
import tensorflow as tf

model = keras.models.load_model(sys.argv[1], compile=False)
converter = tf.lite.TFLiteConverter.from_keras_model(model)
with open(sys.argv[2], "wb") as fh:
    fh.write(converter.convert())
