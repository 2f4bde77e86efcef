"""A Keras file -> ``SourceModel``: sniffing and the child-process HDF5 probe, safety
refusals, the one config walker, graph and object checks, custom objects, weights-only +
architecture, building with Keras 3 or tf_keras, Lambda handling, channels_first kernels,
tensor records, the serving trace and the config-only description (``describe``).
``legacy/`` holds what only old eras need: upgrade rules, old weights, Lambda bytecode
recovery. Imports only ``core``.
"""
