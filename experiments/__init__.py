"""Experiments: thin `python -m experiments.NAME` entry points over the rnnjax library."""
