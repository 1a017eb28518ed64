"""emofl.simulations"""
