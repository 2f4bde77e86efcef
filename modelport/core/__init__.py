"""The bottom layer: errors, records, the manifest, atomic writes and small text helpers.

Nothing here imports TensorFlow, Keras or a runtime: every other layer may import ``core``.
"""
