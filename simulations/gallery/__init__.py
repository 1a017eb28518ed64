"""Synthetic meeting videos made of real face stills, and scoring an analysis against them.
"""
