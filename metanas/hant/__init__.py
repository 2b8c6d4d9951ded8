"""HANT: accelerate a trained network by swapping layers, chosen by an integer program."""
