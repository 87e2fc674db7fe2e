"""yolo-efficientrep: YOLOv6's EfficientRep design (RepVGG-style re-parameterizable blocks) for stock Ultralytics.

Importing the package registers its blocks with Ultralytics' YAML parser (see ``integration``); after ``pip install``
a start-up hook does this automatically as soon as Ultralytics loads, so user code never needs this import. Set
``YOLO_EFFICIENTREP_AUTOLOAD=0`` to turn the automatic part off, and call ``unregister()`` to restore stock behaviour.

Examples:
    >>> from ultralytics import YOLO
    >>> model = YOLO("yolov8n-efficientrep.yaml")  # the plugin's YAML, resolved by bare name
    >>> model.fuse()  # every RepVGGBlock collapses into one 3x3 conv
"""

from __future__ import annotations

# integration first: it checks the Ultralytics version before the blocks import from Ultralytics
from .integration import (
    BLOCKS,
    SUPPORTED_ULTRALYTICS,
    ModelConfigError,
    NotTrainableError,
    RegistrationError,
    UnknownModuleError,
    UnsupportedVersionError,
    check_ultralytics_version,
    is_registered,
    register,
    unregister,
)
from .blocks import (
    CSPSPPF,
    BepC3,
    BiFusion,
    BottleRep,
    QARepVGGBlock,
    QARepVGGBlockV2,
    RepBlock,
    RepVGGBlock,
    SimConv,
    SimCSPSPPF,
    SimSPPF,
    Transpose,
    make_act,
    reparameterize,
)
from .heads import EffiDeHead
from .convert import ConvertError, convert_yolov6
from .deployment import DeployError, deploy, to_stock
from .resources import cfg_dir, find_yaml, yaml_names

__version__ = "0.1.0"

__all__ = (
    "BLOCKS",
    "CSPSPPF",
    "SUPPORTED_ULTRALYTICS",
    "BepC3",
    "BiFusion",
    "BottleRep",
    "ConvertError",
    "DeployError",
    "EffiDeHead",
    "ModelConfigError",
    "NotTrainableError",
    "QARepVGGBlock",
    "QARepVGGBlockV2",
    "RegistrationError",
    "RepBlock",
    "RepVGGBlock",
    "SimCSPSPPF",
    "SimConv",
    "SimSPPF",
    "Transpose",
    "UnknownModuleError",
    "UnsupportedVersionError",
    "__version__",
    "cfg_dir",
    "check_ultralytics_version",
    "convert_yolov6",
    "deploy",
    "find_yaml",
    "is_registered",
    "make_act",
    "register",
    "reparameterize",
    "to_stock",
    "unregister",
    "yaml_names",
)

register()
