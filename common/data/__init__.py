"""Faces in memory: the FER2013 class order, loaders for CSV and image folders, the synthetic
generator, preprocessing, augmentation, and who trains on which faces (partitions, public split).
"""
