"""emofl.common"""
