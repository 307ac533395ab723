"""Perception models trained on the real (and synthetic) data: a small ResNet for 32 px images."""
