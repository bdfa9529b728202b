"""QML Explorer: configure, run and compare quantum machine learning experiments."""

import os

# tensorflow-quantum 0.7.x is built against Keras 2; it must be selected before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
