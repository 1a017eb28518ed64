"""Per-face inference on the device: Haar face detection, crops, image classification, and the
client of the encrypted-head service.
"""
