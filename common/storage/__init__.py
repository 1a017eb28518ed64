"""Writes that never leave a half-written file behind.
"""
