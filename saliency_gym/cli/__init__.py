"""The ``saliency-gym`` command line."""
