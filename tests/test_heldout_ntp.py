"""Plain next-token loss/accuracy on held-out documents (rlpretrain/eval/heldout_ntp.py)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlpretrain.eval.heldout_ntp import loss_and_accuracy


def test_loss_and_accuracy_match_transformers():
    torch.manual_seed(0)  # a real (untrained) Llama: the numbers only have to agree with transformers' own
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    docs = [[3, 7, 7, 9, 1, 4], [5, 2, 8, 8, 8, 8, 8, 1, 0, 12, 33]]
    got = loss_and_accuracy(model, docs)
    with torch.no_grad():  # HF's own shifted loss, one document at a time, weighted by its tokens
        losses = [float(model(input_ids=torch.tensor([d]), labels=torch.tensor([d])).loss) for d in docs]
        hits = [int((model(input_ids=torch.tensor([d])).logits[0, :-1].argmax(-1) == torch.tensor(d[1:])).sum())
                for d in docs]
    n = [len(d) - 1 for d in docs]
    assert got["tokens"] == sum(n) == 15
    assert abs(got["loss"] - sum(l * k for l, k in zip(losses, n)) / sum(n)) < 1e-5
    assert got["accuracy"] == sum(hits) / sum(n)
