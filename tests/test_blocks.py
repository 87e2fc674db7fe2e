"""Block-level re-parameterization: every block, every structural variant, exact before/after fusing."""

from __future__ import annotations

import pytest
import torch
from conftest import count, randomize_bn
from torch import nn
from torch.nn import functional as F

from yolo_efficientrep import (
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

# (class, positional args, keyword args, input channels or list of them, input size(s))
CASES = []
for c1, c2 in ((16, 16), (16, 24)):
    for s in (1, 2):
        CASES.append((RepVGGBlock, (c1, c2, 3, s), {}, c1))
        CASES.append((QARepVGGBlock, (c1, c2, 3, s), {}, c1))
        CASES.append((QARepVGGBlockV2, (c1, c2, 3, s), {}, c1))
        CASES.append((SimConv, (c1, c2, 3, s), {}, c1))
        CASES.append((SimConv, (c1, c2, 1, s), {}, c1))
    for n in (1, 2, 3, 6):
        CASES.append((RepBlock, (c1, c2, n), {}, c1))
        CASES.append((RepBlock, (c1, c2, n, True), {}, c1))
        for e in (1 / 2, 2 / 3):
            CASES.append((BepC3, (c1, c2, n, e), {}, c1))
    CASES.append((BepC3, (c1, c2, 2, 1 / 2, SimConv), {}, c1))
    CASES.append((BottleRep, (c1, c2), {}, c1))
    CASES.append((BottleRep, (c1, c2), {"alpha": True}, c1))
    CASES.append((SimSPPF, (c1, c2), {}, c1))
    for e in (1 / 2, 2 / 3):
        CASES.append((CSPSPPF, (c1, c2, 5, e), {}, c1))
        CASES.append((SimCSPSPPF, (c1, c2, 5, e), {}, c1))
    CASES.append((Transpose, (c1, c2), {}, c1))
CASES += [
    (RepVGGBlock, (16, 16, 3, 1, None, 4), {}, 16),  # grouped
    (RepVGGBlock, (16, 16, 3, 1, None, 16), {}, 16),  # depthwise
    (RepVGGBlock, (16, 16, 3, 2, None, 16), {}, 16),  # depthwise, stride 2
    (RepVGGBlock, (16, 16, 3, 1, None, 1, 2), {}, 16),  # dilated
    (RepVGGBlock, (16, 16, 5, 1), {}, 16),  # 5x5 main branch
    (RepVGGBlock, (16, 16), {"act": "nn.SiLU()"}, 16),
    (RepVGGBlock, (16, 16), {"act": "nn.SiLU()", "branches": False}, 16),  # YOLOv6's conv_silu training mode
    (RepVGGBlock, (16, 24, 3, 2), {"branches": False}, 16),
    (QARepVGGBlock, (16, 16, 3, 1, None, 4), {}, 16),  # grouped
    (QARepVGGBlockV2, (16, 16, 3, 1, None, 4), {}, 16),  # grouped average pool
    (QARepVGGBlockV2, (16, 16, 3, 1, None, 16), {}, 16),  # depthwise
    (QARepVGGBlock, (16, 16, 3, 1, None, 1, 2), {}, 16),  # dilated
    (QARepVGGBlockV2, (16, 16, 5, 1), {}, 16),  # 5x5 main branch and average pool
    (QARepVGGBlockV2, (16, 16), {"act": "nn.SiLU()"}, 16),
    (RepBlock, (16, 16, 3, False, QARepVGGBlockV2), {}, 16),
    (RepBlock, (16, 24, 4, True, QARepVGGBlock), {}, 16),
    (BepC3, (16, 24, 4, 1 / 2, QARepVGGBlockV2), {}, 16),
    (BiFusion, ([16, 24, 8], 16), {}, [16, 24, 8]),
    (BiFusion, ([32, 32, 32], 32), {}, [32, 32, 32]),
]


def _ids(case):
    cls, args, kwargs, _ = case
    shown = [a.__name__ if isinstance(a, type) else round(a, 3) if isinstance(a, float) else a for a in args]
    return f"{cls.__name__}{shown}{kwargs or ''}"


def _input(c1, batch=2, size=16):
    g = torch.Generator().manual_seed(1)
    if isinstance(c1, list):  # BiFusion: [higher (coarser), current, lower (finer)]
        return [torch.randn(batch, c, size * 2**k // 2, size * 2**k // 2, generator=g) for k, c in enumerate(c1)]
    return torch.randn(batch, c1, size, size, generator=g)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_fuse_is_exact_and_collapses_branches(case):
    cls, args, kwargs, c1 = case
    torch.manual_seed(0)
    block = randomize_bn(cls(*args, **kwargs))
    x = _input(c1)
    reps = [m for m in block.modules() if isinstance(m, RepVGGBlock)]
    assert all(not m.fused and hasattr(m, "conv1") and hasattr(m, "conv2") for m in reps)
    assert all(isinstance(m.conv2, nn.Module) == kwargs.get("branches", True) for m in reps)
    with torch.no_grad():
        before = block(x)
        reparameterize(block)
        after = block(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert count(block, nn.BatchNorm2d) == 0
    for m in reps:  # each rep unit is one conv now
        assert m.fused and not hasattr(m, "conv1") and not hasattr(m, "bn")
        assert [type(c) for c in m.modules() if isinstance(c, nn.Conv2d)] == [nn.Conv2d]
        assert m.conv.bias is not None
    with torch.no_grad():  # fusing again is harmless
        reparameterize(block)
        torch.testing.assert_close(block(x), after, rtol=0, atol=0)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_fused_state_dict_loads_strict_into_deploy_form(case):
    cls, args, kwargs, c1 = case
    torch.manual_seed(0)
    fused = reparameterize(randomize_bn(cls(*args, **kwargs)))
    deploy = cls(*args, **kwargs, **({} if cls is Transpose else {"deploy": True})).eval()
    assert count(deploy, nn.BatchNorm2d) == 0
    assert sorted(deploy.state_dict()) == sorted(fused.state_dict())
    deploy.load_state_dict(fused.state_dict(), strict=True)
    x = _input(c1)
    with torch.no_grad():
        torch.testing.assert_close(deploy(x), fused(x), rtol=0, atol=0)


def test_repvgg_structure_follows_the_identity_rule():
    assert isinstance(RepVGGBlock(8, 8).bn, nn.BatchNorm2d)  # c1 == c2, stride 1
    assert RepVGGBlock(8, 16).bn is None
    assert RepVGGBlock(8, 8, 3, 2).bn is None
    assert RepVGGBlock(8, 8).identity and not RepVGGBlock(8, 16).identity
    assert RepVGGBlock(8, 8).avg is None and RepVGGBlock(8, 8).post_bn is None  # QARepVGG-only branches
    plain = RepVGGBlock(8, 8, branches=False)  # YOLOv6's conv_relu mode: the k x k conv+BN alone
    assert plain.conv2 is None and plain.bn is None and not plain.identity
    block = RepVGGBlock(8, 16, 3, 2)
    assert block.conv1.conv.kernel_size == (3, 3) and block.conv2.conv.kernel_size == (1, 1)
    assert block.conv1.conv.stride == block.conv2.conv.stride == (2, 2)
    assert isinstance(block.act, nn.ReLU)  # the paper's default


def test_qarepvgg_structure():
    """BN on the k x k branch only, a plain bias-free 1x1 conv, BN after the sum; V2 adds an average pool."""
    block = QARepVGGBlock(8, 8)
    assert hasattr(block.conv1, "bn") and type(block.conv2) is nn.Conv2d and block.conv2.bias is None
    assert block.identity and block.avg is None and block.bn is None  # no BN on the identity branch
    assert isinstance(block.post_bn, nn.BatchNorm2d) and block.post_bn.num_features == 8
    assert count(block, nn.BatchNorm2d) == 2
    v2 = QARepVGGBlockV2(8, 8)
    assert v2.identity and isinstance(v2.avg, nn.AvgPool2d) and v2.avg.kernel_size == 3 and v2.avg.count_include_pad
    for other in (QARepVGGBlockV2(8, 16), QARepVGGBlockV2(8, 8, 3, 2)):  # identity and pool need c1 == c2, stride 1
        assert not other.identity and other.avg is None
    with pytest.raises(ValueError, match="needs d=1 for its average-pool branch"):
        QARepVGGBlockV2(8, 8, 3, 1, None, 1, 2)
    with pytest.raises(ValueError, match="QARepVGGBlock always trains its branches; branches=False is RepVGGBlock's"):
        QARepVGGBlock(8, 8, branches=False)


def test_qarepvgg_post_sum_bn_normalizes_the_sum():
    """The fused block equals act(BN_post(sum of branches)), not a sum of separately normalized branches."""
    block = randomize_bn(QARepVGGBlockV2(8, 8))
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        branches = block.conv1(x) + block.conv2(x) + x + block.avg(x)
        torch.testing.assert_close(block(x), block.act(block.post_bn(branches)))


@pytest.mark.parametrize("cls", [RepVGGBlock, QARepVGGBlock, QARepVGGBlockV2, SimConv])
def test_units_fuse_through_ultralytics_basemodel_fuse(cls):
    """Ultralytics' own BaseModel.fuse() (not a re-enactment of it) collapses every plugin unit exactly."""
    from ultralytics.nn.tasks import BaseModel

    class Tiny(BaseModel):
        def __init__(self, *units):
            super().__init__()
            self.model = nn.Sequential(*units)

    # enough BatchNorms that Ultralytics' is_fused() (fewer than 10 norm layers) does not take the model as fused
    units = [cls(8, 8) for _ in range(10)] + [cls(8, 16, 3, 2)]
    model = randomize_bn(Tiny(*units))
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        before = model.model(x)
        model.fuse(verbose=False)
        after = model.model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert count(model, nn.BatchNorm2d) == 0 and model.is_fused()
    for unit in units:
        convs = [m for m in unit.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 1 and convs[0].bias is not None


# ------------------------------------------------------------------------------ reference forwards, from definitions
def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _conv(x, conv):
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _conv_bn(x, unit):  # an Ultralytics Conv / SimConv without its activation
    return _bn(_conv(x, unit.conv), unit.bn)


def _reference(m, x):
    """The block's training-form output computed from its definition with torch.nn.functional (eval-mode BN)."""
    if type(m) is RepVGGBlock:  # k x k conv+BN + 1x1 conv+BN + identity BN, summed, then the activation
        y = _conv_bn(x, m.conv1)
        y = y + _conv_bn(x, m.conv2) if m.conv2 is not None else y
        return m.act(y + _bn(x, m.bn) if m.bn is not None else y)
    if type(m) in (QARepVGGBlock, QARepVGGBlockV2):  # BN on k x k only, plain 1x1, raw identity (+ avg pool), post BN
        k = m.conv1.conv.kernel_size[0]
        y = _conv_bn(x, m.conv1) + F.conv2d(x, m.conv2.weight, None, m.conv2.stride, 0, 1, m.conv2.groups)
        if m.c1 == m.c2 and m.conv1.conv.stride == (1, 1):
            y = y + x + (F.avg_pool2d(x, k, 1, k // 2, count_include_pad=True) if type(m) is QARepVGGBlockV2 else 0)
        return m.act(_bn(y, m.post_bn))
    if type(m) is SimConv:
        return m.act(_conv_bn(x, m))
    if type(m) is Transpose:
        t = m.upsample
        return F.conv_transpose2d(x, t.weight, t.bias, t.stride, t.padding)
    if type(m) is BottleRep:  # two units, plus alpha * x when the channels allow a shortcut
        y = _reference(m.conv2, _reference(m.conv1, x))
        return y + m.alpha * x if x.shape[1] == y.shape[1] else y
    if type(m) is RepBlock:
        for unit in m.m:
            x = _reference(unit, x)
        return x
    if type(m) is BepC3:  # processed branch first in the concat
        return _reference(m.cv3, torch.cat((_reference(m.m, _reference(m.cv1, x)), _reference(m.cv2, x)), 1))
    k = 5
    pool = lambda t: F.max_pool2d(t, k, 1, k // 2)  # noqa: E731
    if type(m) is SimSPPF:
        y0 = _reference(m.cv1, x)
        y1 = pool(y0)
        y2 = pool(y1)
        return _reference(m.cv2, torch.cat((y0, y1, y2, pool(y2)), 1))
    if type(m) in (CSPSPPF, SimCSPSPPF):  # shortcut cv2 first, then the pooled main path
        y0 = _reference(m.cv4, _reference(m.cv3, _reference(m.cv1, x)))
        y1 = pool(y0)
        y2 = pool(y1)
        main = _reference(m.cv6, _reference(m.cv5, torch.cat((y0, y1, y2, pool(y2)), 1)))
        return _reference(m.cv7, torch.cat((_reference(m.cv2, x), main), 1))
    if type(m) is BiFusion:  # [upsampled higher, current, downsampled lower]
        up = _reference(m.upsample, x[0])
        down = _reference(m.downsample, _reference(m.cv2, x[2]))
        return _reference(m.cv3, torch.cat((up, _reference(m.cv1, x[1]), down), 1))
    raise AssertionError(type(m))


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_training_form_matches_the_definition(case):
    cls, args, kwargs, c1 = case
    torch.manual_seed(0)
    block = randomize_bn(cls(*args, **kwargs))
    for m in block.modules():  # a shortcut weight other than 1 too
        if isinstance(getattr(m, "alpha", None), torch.Tensor):
            m.alpha.fill_(0.7)
    x = _input(c1)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference(block, x), rtol=1e-5, atol=1e-5)


def test_fuse_handles_branches_whose_bn_was_folded_first():
    """A plain Conv+BN fold on the branches (as some tools do first) must not break the merge."""
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    block = randomize_bn(RepVGGBlock(8, 8))
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        before = block(x)
        for branch in (block.conv1, block.conv2):
            branch.conv = fuse_conv_and_bn(branch.conv, branch.bn)
            del branch.bn
        block.fuse_convs()
        torch.testing.assert_close(block(x), before, rtol=1e-4, atol=1e-5)


def test_bottlerep_alpha_is_a_frozen_buffer():
    block = BottleRep(8, 8, alpha=True)
    assert "alpha" in block.state_dict() and "alpha" not in dict(block.named_parameters())
    assert block.alpha.item() == 1.0
    opt = torch.optim.SGD(block.parameters(), lr=0.1, weight_decay=0.5)
    block(torch.randn(2, 8, 8, 8)).square().mean().backward()
    opt.step()
    assert block.alpha.item() == 1.0
    block.alpha.fill_(0.25)  # an imported value is honoured
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.conv2(block.conv1(x)) + 0.25 * x)


@pytest.mark.parametrize(("n", "expected"), [(1, 1), (2, 1), (3, 1), (6, 3), (7, 3), (11, 5)])
def test_repblock_bottlerep_mode_uses_half_the_units(n, expected):
    block = RepBlock(8, 8, n, bottle_rep=True)
    assert [type(m) for m in block.m] == [BottleRep] * expected
    assert all(m.alpha.item() == 1.0 for m in block.m)
    assert len(RepBlock(8, 8, n).m) == n


@pytest.mark.parametrize(("e", "hidden"), [(1 / 2, 48), (2 / 3, 64)])
def test_bepc3_hidden_width(e, hidden):
    block = BepC3(64, 96, 2, e)
    assert block.cv1.conv.out_channels == block.cv2.conv.out_channels == hidden
    assert block.cv3.conv.in_channels == 2 * hidden


def test_bifusion_output_is_at_the_current_level():
    block = BiFusion([32, 64, 16], 32).eval()
    y = block([torch.zeros(1, 32, 4, 4), torch.zeros(1, 64, 8, 8), torch.zeros(1, 16, 16, 16)])
    assert y.shape == (1, 32, 8, 8)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (True, nn.ReLU),
        (False, nn.Identity),
        (None, nn.Identity),
        ("nn.SiLU()", nn.SiLU),
        ("torch.nn.Hardswish()", nn.Hardswish),
        ("silu", nn.SiLU),
        ("ReLU", nn.ReLU),
        (nn.GELU, nn.GELU),
        (nn.Tanh(), nn.Tanh),
    ],
)
def test_make_act(spec, expected):
    assert type(make_act(spec, nn.ReLU)) is expected


def test_make_act_passes_literal_arguments_without_eval():
    act = make_act("nn.LeakyReLU(0.2, inplace=True)", nn.ReLU)
    assert isinstance(act, nn.LeakyReLU) and act.negative_slope == 0.2 and act.inplace
    with pytest.raises(ValueError, match=r"unknown activation .os\.system"):
        make_act("os.system('true')", nn.ReLU)
    with pytest.raises(ValueError, match="unknown activation 'nn.Nope"):
        make_act("nn.Nope()", nn.ReLU)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RepVGGBlock(8, 8, 4), "odd kernel size"),
        (lambda: RepVGGBlock(8, 8, 3, 1, 0), "'same' padding p=1"),
        (lambda: RepVGGBlock(8, 12, 3, 1, None, 8), "divisible by groups"),
        (lambda: RepBlock(8, 8, 0), "n >= 1"),
        (lambda: BepC3(8, 8, 1, 1.5), "0 < e <= 1"),
        (lambda: CSPSPPF(8, 8, 5, 0.0), "0 < e <= 1"),
        (lambda: BiFusion([8, 8], 8), "three inputs"),
    ],
)
def test_bad_block_arguments_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_gradients_reach_every_branch_in_training_form(case):
    cls, args, kwargs, c1 = case
    torch.manual_seed(0)
    block = cls(*args, **kwargs).train()
    x = _input(c1, batch=4)
    block(x).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    branches = [m for m in block.modules() if isinstance(m, RepVGGBlock) and m.conv2 is not None]
    assert all(m.conv2.conv.weight.grad.abs().sum() > 0 for m in branches if type(m) is RepVGGBlock)


@pytest.mark.parametrize("cls", [RepVGGBlock, QARepVGGBlockV2, SimConv])
def test_fusing_in_float16_stays_float16_and_close(cls):
    torch.manual_seed(0)
    block = randomize_bn(cls(16, 16))
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        want = block(x)
        half = reparameterize(block.half())
        got = half(x.half())
    assert got.dtype == torch.float16 and all(p.dtype == torch.float16 for p in half.parameters())
    assert ((got.float() - want).abs().max() / want.abs().max()).item() < 1e-2
