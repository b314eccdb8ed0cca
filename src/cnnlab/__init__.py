"""cnnlab: design, train, tune and track convolutional networks on image classification."""

__version__ = "0.1.0"
