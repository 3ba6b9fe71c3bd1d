import torch

from lyricgen.data.windows import RandomWindows, consecutive_windows


def test_windows_are_inputs_and_next_character_targets():
    ids = torch.arange(100, dtype=torch.uint8)
    inputs, targets = RandomWindows(ids, batch_size=8, seq_len=10, seed=0).batch(0)
    assert inputs.shape == targets.shape == (8, 10)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert torch.equal(targets - inputs, torch.ones_like(inputs))
    assert int(targets.max()) <= 99


def test_batches_depend_only_on_seed_and_step():
    ids = torch.randint(50, (1000,), dtype=torch.uint8)
    windows = RandomWindows(ids, batch_size=4, seq_len=10, seed=7)
    assert torch.equal(windows.batch(3)[0], RandomWindows(ids, 4, 10, seed=7).batch(3)[0])
    assert not torch.equal(windows.batch(3)[0], windows.batch(4)[0])
    assert not torch.equal(windows.batch(3)[0], RandomWindows(ids, 4, 10, seed=8).batch(3)[0])
    resumed = iter(RandomWindows(ids, 4, 10, seed=7, start_step=5))
    assert torch.equal(next(resumed)[0], windows.batch(5)[0])


def test_validation_windows_tile_the_text_without_overlap():
    ids = torch.arange(25, dtype=torch.uint8)
    windows = consecutive_windows(ids, seq_len=8)
    assert len(windows) == 3
    inputs, targets = windows.tensors
    assert inputs[:, 0].tolist() == [0, 8, 16]
    assert targets[-1, -1] == 24
