"""The federated-learning device: the Flower ClientApp, local DP-SGD rounds, the device's privacy
ledger, its CKKS keys and the encryption of its updates.
"""
