"""Experiment kinds. Spec modules import no TensorFlow; ``*_train`` / runner modules do."""
