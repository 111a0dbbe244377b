"""Backbone networks. Each module has ``features(x, **options) -> {"s4": ..., "s8": ..., "s16": ..., "s32": ...}``
taking the network's image tensor after the backbone's colour conversion (``flzoo.models.backbones``)."""
