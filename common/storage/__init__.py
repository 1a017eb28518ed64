"""Writes that never leave a half-written file behind, and the check that an input path
names a regular file before anything reads it.
"""
