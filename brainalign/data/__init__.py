"""Neural data: the dataset model, loaders (THINGS-EEG2, Shen fMRI, user arrays) and the synthetic brain."""
from .dataset import NeuralDataset
from .images import ImageSet

__all__ = ["NeuralDataset", "ImageSet"]
