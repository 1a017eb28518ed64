"""emofl.server"""
