"""What every backbone shares: named stages, ``forward_features``, the init switch, the registry.

A backbone is an ordered :class:`~torch.nn.ModuleDict` of *stages*, ``self.stages``; each stage's
name is a layer a caller can ask for. ``forward`` runs every stage and returns the last one, the
embedding; ``forward_features(x, layer)`` stops after ``layer`` and returns its output flattened to
``(B, D)``. Subclasses only build their stages and say how ``init="caffe"`` / ``"torch"`` fill
the weights; the layer lookup, its errors and the dimension probe live here once.

Factories register themselves by name with :func:`register_model`, so :data:`MODELS` and the
networks cannot drift apart.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from tcdn.errors import TcdnError

#: the weight initialisations every backbone offers: the network's PyTorch reference init
#: (PyTorch's layer defaults, or torchvision's for ResNet), its Caffe definition's fillers, and
#: He et al.'s (2015) init for every layer (:func:`he_init_`)
INITS = ("torch", "caffe", "he")
#: names accepted for compatibility: ``kaiming`` was the name of ``torch`` (which is He et al.'s
#: init only for ResNet; PyTorch's layer defaults are a scaled-down uniform variant of it)
INIT_ALIASES = {"kaiming": "torch"}

#: name -> factory ``f(embed_dim=..., **options) -> Backbone``; filled by :func:`register_model`
MODELS: dict[str, Callable[..., Backbone]] = {}
#: the models whose factory takes ``in_channels`` (input with motion channels)
MULTICHANNEL_MODELS: set[str] = set()
#: the models whose embedding layer directly follows their feature layer, so that a projection
#: head can replace it (:func:`add_projection_head`)
HEAD_MODELS: set[str] = set()

F = TypeVar("F", bound=Callable[..., "Backbone"])


def register_model(name: str, *, in_channels: bool = False, head: bool = False) -> Callable[[F], F]:
    """Class or function decorator: make ``factory`` buildable as ``build_model(name, ...)``.

    ``in_channels``: the factory takes an ``in_channels`` option; ``head``: the network's last
    stage directly follows its :attr:`~Backbone.default_layer`, so a projection head can replace it.
    """

    def add(factory: F) -> F:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = factory
        if in_channels:
            MULTICHANNEL_MODELS.add(name)
        if head:
            HEAD_MODELS.add(name)
        return factory

    return add


def check_init(init: str) -> str:
    """``init`` (an alias resolved), or :class:`TcdnError` for an unknown one."""
    init = INIT_ALIASES.get(init, init)
    if init not in INITS:
        raise TcdnError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return init


class Backbone(nn.Module):
    """Base class of the embedding networks: ``(B, 3, H, W)`` frames -> ``(B, embed_dim)``.

    Subclasses set the class attributes, build an ordered mapping of stages named exactly as
    :attr:`layer_names` and hand it to :meth:`_set_stages`, which stores it as ``self.stages`` and
    applies the chosen init.

    Attributes
    ----------
    layer_names
        The layers :meth:`forward_features` can stop at, in forward order; the last is the embedding.
    default_layer
        The layer whose output is the discovery feature when none is named.
    input_size
        The side of the frames the network was designed for (other sides work too).
    embed_dim
        Width of the embedding (the output of ``forward``).
    num_features
        Width of :attr:`default_layer`'s output (see :meth:`feature_dim` for any layer).
    init
        ``"torch"``, ``"caffe"`` or ``"he"``: how the weights were filled (each network documents
        the first two; ``"he"`` is :func:`he_init_` for every network).
    in_channels
        Channels of the input (3: RGB; 6: RGB and motion, see :mod:`tcdn.models.input`).
    """

    layer_names: tuple[str, ...] = ()
    default_layer: str = ""
    input_size: int = 224
    in_channels: int = 3

    embed_dim: int
    num_features: int
    init: str
    stages: nn.ModuleDict

    def _set_stages(self, stages: OrderedDict[str, nn.Module], init: str) -> None:
        if tuple(stages) != self.layer_names:  # a programming error, not a user's
            raise AssertionError(f"stages {tuple(stages)} != layer_names {self.layer_names}")
        self.stages = nn.ModuleDict(stages)
        self.init = check_init(init)
        self.apply_init(self.init)

    def apply_init(self, init: str) -> None:
        """Fill every weight (again) with ``init`` (``"torch"``, ``"caffe"`` or ``"he"``)."""
        init = check_init(init)
        if init == "caffe":
            self._caffe_init()
        elif init == "he":
            he_init_(self)
        else:
            self._torch_init()
        self.init = init

    def _caffe_init(self) -> None:
        """Fill the weights as the network's Caffe definition did."""
        raise NotImplementedError

    def _torch_init(self) -> None:
        """Fill the weights as PyTorch (or torchvision) does for this network; the layers'
        defaults unless overridden."""

    def check_layer(self, layer: str | None) -> str:
        """``layer``, or :attr:`default_layer` for ``None``; an unknown name raises :class:`TcdnError`."""
        if layer is None:
            return self.default_layer
        if layer not in self.layer_names:
            raise TcdnError(
                f"unknown layer {layer!r}; this network has {', '.join(self.layer_names)}"
            )
        return layer

    def forward_features(self, x: Tensor, layer: str | None = None) -> Tensor:
        """Run the stages up to ``layer`` and return its output, flattened to ``(B, D)``.

        Parameters
        ----------
        x
            ``(B, 3, H, W)`` normalised frames.
        layer
            One of :attr:`layer_names`; ``None`` means :attr:`default_layer`.
        """
        layer = self.check_layer(layer)
        for name, stage in self.stages.items():
            x = stage(x)
            if name == layer:
                return x.flatten(1)
        raise AssertionError("unreachable")

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalised frames -> ``(B, embed_dim)`` embeddings."""
        for stage in self.stages.values():
            x = stage(x)
        return x

    def feature_dim(self, layer: str | None = None, input_size: int | None = None) -> int:
        """Width ``D`` of :meth:`forward_features`'s output for ``layer`` on square frames of side
        ``input_size`` (default :attr:`input_size`); layers after the adaptive pool do not depend on it.

        Found by running one zero frame through the network (in eval mode, without gradients).
        """
        layer = self.check_layer(layer)
        side = self.input_size if input_size is None else input_size
        param = next(self.parameters())
        was_training = self.training
        try:
            with torch.no_grad():
                x = torch.zeros(
                    1, self.in_channels, side, side, dtype=param.dtype, device=param.device
                )
                return int(self.eval().forward_features(x, layer).shape[1])
        finally:
            self.train(was_training)


def he_init_(model: nn.Module) -> None:
    """He et al. (2015) init for ReLU networks, in place: convolutions ``kaiming_normal_`` with
    ``fan_out`` (as ResNet and torchvision), linear layers ``kaiming_normal_`` with ``fan_in``,
    biases 0, batch norms weight 1 and bias 0.

    PyTorch's layer default (``kaiming_uniform_`` with ``a = sqrt(5)``) shrinks activations by
    about ``1 / sqrt(3)`` per layer; through AlexNet's seven layers the embedding of a random
    network becomes tiny and nearly the same for every frame.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ProjectionHead(nn.Sequential):
    """``[dropout ->] Linear(in, hidden, no bias) -> BatchNorm -> ReLU -> Linear(hidden, out)``
    (SimCLR's and VICReg's projector): the loss sees its output, discovery the layer below it."""

    def __init__(self, cin: int, hidden: int, out: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Dropout(dropout),
            nn.Linear(cin, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )


def add_projection_head(model: Backbone, hidden: int, out: int) -> Backbone:
    """Replace ``model``'s embedding layer (its last stage: AlexNet's fc7, ResNet's fc) by a
    :class:`ProjectionHead` fed by its feature layer (:attr:`Backbone.default_layer`, which must be
    the stage just before it). The head keeps the replaced stage's dropout, if any. Returns
    ``model``, whose :attr:`~Backbone.embed_dim` becomes ``out``; the features for discovery stay
    *below* the head."""
    names = model.layer_names
    if len(names) < 2 or names[-2] != model.default_layer:
        raise TcdnError(
            f"a projection head replaces the layer after the feature layer; in this network "
            f"({type(model).__name__}) the feature layer {model.default_layer!r} is not followed by "
            "the embedding layer"
        )
    last = model.stages[names[-1]]
    dropout = next((float(m.p) for m in last.modules() if isinstance(m, nn.Dropout)), 0.0)
    model.stages[names[-1]] = ProjectionHead(model.num_features, hidden, out, dropout)
    model.embed_dim = out
    return model


def caffe_gaussian_(module: nn.Module, std: float, bias: float = 0.0) -> None:
    """Caffe's ``gaussian`` weight filler (mean 0, ``std``) and ``constant`` bias filler."""
    nn.init.normal_(module.weight, 0.0, std)  # type: ignore[arg-type]
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)  # type: ignore[arg-type]


def caffe_xavier_(module: nn.Module, bias: float = 0.0) -> None:
    """Caffe's ``xavier`` weight filler (uniform in ``±sqrt(3 / fan_in)``) and a constant bias."""
    weight: Tensor = module.weight  # type: ignore[assignment]
    fan_in = weight[0].numel()
    bound = math.sqrt(3.0 / fan_in)
    nn.init.uniform_(weight, -bound, bound)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)  # type: ignore[arg-type]


def count_parameters(model: nn.Module) -> int:
    """Number of learnable values (buffers such as BatchNorm's running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def _fits(value: object, hint: object) -> bool:
    """Whether ``value`` (as read from YAML) has the type ``hint`` names; types this does not
    know are left to the model."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if hint in (tuple, list) or origin in (tuple, list):
        if not isinstance(value, tuple | list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        if args and origin is tuple:
            return len(value) == len(args) and all(
                _fits(v, a) for v, a in zip(value, args, strict=False)
            )
        return not args or all(_fits(v, args[0]) for v in value)
    return True


def model_options_problem(name: str, options: object) -> str | None:
    """What is wrong with ``options`` (a config's ``model_options``) for the model ``name``: not
    a mapping, an option the network does not take, or a value of the wrong type; ``None`` when
    nothing is. Checked when a config is made, before any frame is decoded."""
    import inspect
    import typing

    if not isinstance(options, dict):
        return f"must be a mapping of option: value, got {type(options).__name__}"
    factory = MODELS.get(name)
    if factory is None:
        return None
    target: Callable[..., object] = factory
    returned = inspect.signature(factory).return_annotation
    if isinstance(returned, str):  # a factory function: its options are its class's
        target = getattr(factory, "__globals__", {}).get(returned, factory)
    init = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(init)
        params = inspect.signature(init).parameters
    except (NameError, TypeError, ValueError):
        return None
    taken = sorted(p for p in params if p not in ("self", "embed_dim", "kwargs"))
    for key, value in options.items():
        if key not in params:
            return f"{name} takes no option {key!r}; it takes {', '.join(taken)}"
        if key in hints and not _fits(value, hints[key]):
            want = getattr(hints[key], "__name__", None) or str(hints[key])
            return (
                f"{key}={value!r} must be of type {want}, like its default {params[key].default!r}"
            )
    return None
