"""Differential-privacy bookkeeping shared by devices, server and auditors: DP-SGD events and
the neighbouring relation as values (`events`, free of torch), a client's ledger of events and
the ε derived from it (`ledger`), and the noise a budget allows (`budget`).
"""
