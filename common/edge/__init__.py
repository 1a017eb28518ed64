"""The frame and temporal models on ONNX Runtime, for the device: their export to ONNX, int8
static quantization calibrated on public faces only, the export card that ties the ONNX files
to the torch weights they came from, and inference sessions that need neither torch nor Opacus.
"""
