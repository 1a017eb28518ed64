"""Differential-privacy bookkeeping shared by devices, server and auditors: DP-SGD events,
the neighbouring relation, and ε derived from a history of events.
"""
