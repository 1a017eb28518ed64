"""Smaller frame models made from the shipped one (issue #14): L1 structured pruning of the VGG
backbone rebuilt as a dense model, and knowledge distillation into a narrower student, both
fine-tuned on the declared public faces only (docs/benchmarks.md §12 compares them with fp32
and int8)."""
