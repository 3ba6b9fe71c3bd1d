"""Sample lyrics from a checkpoint: `python -m lyricgen.generate ckpt=latest prime="I want" length=500`.

Needs only the checkpoint: the vocabulary and hyperparameters travel inside it. Like the sample a run
prints when it ends, the text comes from the network mixed with the run's n-gram memory of its training
text (lyricgen.nn.ngram) while the run's directory and text are at hand; with_memory=false samples from the
network alone. The sampling itself is lyricgen.training.generation's, which score and play share.
"""

import sys

from omegaconf import OmegaConf

from lyricgen import one_line_errors
from lyricgen.options import dotlist, help_text, parsed, wants_help
from lyricgen.training.generation import GenerateConfig, generate

SUMMARY = "sample lyrics (or a song in a form) from a checkpoint"


def parse_args(argv: list[str]) -> list[GenerateConfig]:
    """key=value arguments over the typed defaults, one config per temperature asked for (temperature=[0.5,1.0]);
    a wrong key or type is a one-line error. The prime is taken as raw text: YAML would turn "yes" into True."""
    asked = [arg for arg in argv if arg.startswith("temperature=")]
    others = [arg for arg in argv if not arg.startswith("temperature=")]
    temperatures = dotlist(asked[-1:]).get("temperature") if asked else None
    if not OmegaConf.is_list(temperatures):
        return [parsed(GenerateConfig, [*others, *asked[-1:]], raw=("prime",))]
    return [parsed(GenerateConfig, [*others, f"temperature={value}"], raw=("prime",)) for value in temperatures]


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(GenerateConfig, "generate", SUMMARY))
        return
    configs = parse_args(argv)
    for cfg in configs:
        samples = generate(cfg)
        if len(configs) > 1 and not cfg.stream:
            print(f"=== temperature {cfg.temperature} ===")
        if not cfg.stream:
            print("\n\n----------\n\n".join(samples))


if __name__ == "__main__":
    main()
