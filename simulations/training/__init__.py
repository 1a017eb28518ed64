"""Training drivers that produce the shipped weights: the FER2013 recipe, the temporal model, and
shipping a run's model into the package.
"""
