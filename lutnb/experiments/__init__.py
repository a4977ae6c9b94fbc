"""lutnb.experiments: what a notebook runs end to end, built only from the packages below it.

``compare`` (LUTBoost against single-stage over metrics and seeds), ``transformers`` (MiniLM and the ViT
as LUT models), ``cifar`` (the CIFAR-10 ResNet-20 recipe), ``accuracy`` (accuracy records for co-design).
"""
