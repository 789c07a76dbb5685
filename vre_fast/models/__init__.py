"""torch architectures written here (a flat file per family); imported only when a model is built."""
