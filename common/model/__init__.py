"""The models a device runs: the frame model (backbone + linear softmax head), the temporal
model over frame probabilities, their training loop, and the files they are shipped in.
"""
