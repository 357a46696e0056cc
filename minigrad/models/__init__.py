"""Ready-made models. ``bert``: a BERT encoder that loads Hugging Face folders (all-MiniLM-L6-v2
on these machines); ``tokenizer``: its WordPiece tokenizer; ``charlm``: character-level language
models (char-RNN, GPT-style transformer) and ``charlm_train``: training them as nanoGPT does;
``bpe``: byte-level BPE (the Llama family's tokenizer); ``llama``: the Llama family.

Example:
    >>> from minigrad.models import BertConfig, BertModel
    >>> BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
    ...                      num_attention_heads=2, intermediate_size=16)).config.head_dim
    4
"""

from minigrad.models.tokenizer import BasicTokenizer, BertTokenizer, WordPieceTokenizer  # noqa: F401
from minigrad.models.bert import (  # noqa: F401
    BertConfig, BertForSequenceClassification, BertModel, SentenceEncoder, mean_pooling,
    minilm_path, normalize,
)
from minigrad.models.charlm import CharRNN, TransformerLM, generate, lm_from_config  # noqa: F401,E402
from minigrad.models.bpe import BPETokenizer  # noqa: F401,E402
from minigrad.models.llama import LlamaConfig, LlamaForCausalLM, smollm2_path  # noqa: F401,E402
