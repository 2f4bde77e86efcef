"""Reading and upgrading configs and weights written by older Keras versions."""
