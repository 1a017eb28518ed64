"""emofl.client"""
