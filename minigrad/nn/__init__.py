"""Neural-network building blocks with PyTorch's names, signatures and parameter layouts."""

from minigrad.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential  # noqa: F401
from minigrad.nn import functional, init  # noqa: F401,E402
from minigrad.nn.layers import (  # noqa: F401,E402
    GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, Linear, LogSoftmax, ReLU, Sigmoid,
    Softmax, Tanh,
)
from minigrad.nn.loss import (  # noqa: F401,E402
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from minigrad.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401,E402
from minigrad.nn.rnn import GRU, LSTM, GRUCell, LSTMCell  # noqa: F401,E402
from minigrad.nn.attention import (  # noqa: F401,E402
    MultiheadAttention, TransformerEncoder, TransformerEncoderLayer,
)
from minigrad.nn.pooling import (  # noqa: F401,E402
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d,
)
from minigrad.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm  # noqa: F401,E402
from minigrad.nn.upsampling import Unflatten, Upsample  # noqa: F401,E402
from minigrad.nn.llm import RMSNorm, SiLU  # noqa: F401,E402
from minigrad.nn import rotary  # noqa: F401,E402
from minigrad.nn.activation import (  # noqa: F401,E402
    ELU, Dropout1d, Dropout2d, Hardtanh, LeakyReLU, Mish, PReLU, Softplus,
)
from minigrad.nn.containers import ParameterDict, ParameterList  # noqa: F401,E402
from minigrad.nn.transformer import (  # noqa: F401,E402
    Transformer, TransformerDecoder, TransformerDecoderLayer,
)
from minigrad.nn import utils  # noqa: F401,E402
from minigrad.nn import parallel  # noqa: F401,E402
