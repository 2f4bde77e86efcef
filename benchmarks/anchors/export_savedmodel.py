"""Anchor: a SavedModel as the Keras docs show it (``model.export``).

    python export_savedmodel.py MODEL.keras|.h5 OUT_DIR
"""

import sys

import keras

model = keras.models.load_model(sys.argv[1], compile=False)
model.export(sys.argv[2], format="tf_saved_model")
