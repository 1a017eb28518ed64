"""The allowed values of string settings, defined once for the code that checks them and for
the `emofl` options that offer them.

Light on purpose (no torch, no opacus), so that `emofl` builds its parser without loading them.
The accountants are defined with the privacy events (`emofl.common.privacy.events.ACCOUNTANTS`).
"""

# Which parameters clients train: everything, the last block onward, the 1x1 projection and
# the head, or the head only.
TRAINABLE: tuple[str, ...] = ("all", "top", "projection", "head")

# How the server combines updates: plaintext FedAvg, or a sum of CKKS ciphertexts.
SECURE_AGG: tuple[str, ...] = ("none", "ckks")

# Per-participant smoothing over time in a meeting analysis.
SMOOTHING: tuple[str, ...] = ("temporal", "ema", "none")

# Backbones of the frame model: depthwise-separable blocks, or VGG-style stages.
MODEL_KINDS: tuple[str, ...] = ("separable", "vgg")

# How a backbone turns its last feature map into the feature vector: a learned spatial
# weighting per channel (global depthwise convolution, the default for new models), or global
# average pooling (the shipped model's, and that of every file whose card names no pooling).
POOLS: tuple[str, ...] = ("depthwise", "average")
POOL_OF_OLDER_FILES = "average"

# The device's optimizer on its (privatised) gradient: plain SGD, or Adam.
CLIENT_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
