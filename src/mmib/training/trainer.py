"""The training loop: AdamW with warm-up and linear decay, dev evaluation every epoch, best-dev
checkpoint, resumable last checkpoint, metrics.jsonl, early stopping, fixed seeds."""

from __future__ import annotations

import random
import resource
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from mmib.data.discover import Dataset, load_dataset
from mmib.encoders.text import WordTokenizer
from mmib.errors import SettingError
from mmib.model.config import MMIBConfig
from mmib.model.mmib import MMIBModel, build_model, save_pretrained, save_weights
from mmib.model.run_folder import RunFolder
from mmib.processing import cached_image_side, feature_width
from mmib.processing.task import TASKS
from mmib.training.batching import Collator, PreparedSplit, epoch_batches, prepare_split
from mmib.training.config import TrainConfig
from mmib.training.evaluation import evaluate_split
from mmib.training.hardware import describe, make_accelerator, micro_batches, process_share, sync_unless


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peak_gpu_memory(device: torch.device) -> dict[str, float]:
    """Peak memory the process allocated on its CUDA device, when it has one."""
    if device.type != "cuda":
        return {}
    return {"peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def model_config_for(train: TrainConfig, dataset: Dataset, feature_dim: int) -> MMIBConfig:
    """The run's model settings completed from the data (task, labels) and the encoders (feature width);
    an unset max_length takes the task's default in MMIBConfig."""
    task = train.model.task or dataset.task
    return replace(
        train.model,
        task=task,
        labels=list(dataset.label_vocab().labels),
        image_feature_dim=feature_dim,
        entity_markers=train.model.entity_markers and TASKS[task].classifies_pairs,
    )


def make_optimizer(model: MMIBModel, train: TrainConfig, device_type: str = "cpu") -> torch.optim.AdamW:
    """Two learning rates (pretrained encoder vs new layers); no weight decay on biases and norms.

    Every trainable parameter lands in exactly one group (tests check this): the MRE reference code
    that this field copies builds its optimiser from a name filter that leaves the classifier out.
    On CPU and CUDA the update is PyTorch's fused AdamW kernel: on 2 CPU cores the default (foreach) update
    of MiniLM's 23M parameters took 0.17 s of a 0.78 s MNRE step, the fused one a seventh of that
    (benchmarks/training_speed.py); the arithmetic is AdamW's either way.
    """
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        pretrained = name.startswith("text_encoder.")
        no_decay = parameter.dim() < 2
        groups.setdefault((pretrained, no_decay), []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": train.learning_rate if pretrained else train.head_learning_rate,
                "weight_decay": 0.0 if no_decay else train.weight_decay,
            }
            for (pretrained, no_decay), params in sorted(groups.items())
        ],
        fused=device_type in ("cpu", "cuda") or None,
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, final_lr_ratio: float = 0.0
):
    """Linear warm-up, then linear decay to ``final_lr_ratio`` x the peak at ``total_steps``."""
    from transformers import get_linear_schedule_with_warmup

    warmup_steps = int(warmup_ratio * total_steps)
    # Without a floor, transformers' own schedule: runs recorded before the floor existed rerun exactly.
    if final_lr_ratio == 0.0:
        return get_linear_schedule_with_warmup(optimizer, warmup_steps, max(1, total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        remaining = max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
        return final_lr_ratio + (1.0 - final_lr_ratio) * remaining

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TrainingState:
    epoch: int = 0  # epochs completed
    best_f1: float = -1.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    train_seconds: float = 0.0
    train_samples: int = 0


class Trainer:
    """Trains one run; the same code on a CPU, one GPU or several processes (see training/hardware.py)."""

    def __init__(self, train: TrainConfig, progress: bool = True, overwrite: bool = False) -> None:
        self.train_config = train
        self.run = RunFolder(train.output_dir)
        self.progress = progress
        self.overwrite = overwrite  # a fresh run may replace a run already in the folder
        # what the image side read in the last _prepare: image-feature counts, the captions line per split
        self.image_side_report: dict[str, object] = {}
        self.kl_warmup_steps = 0
        self.accelerator = None
        self.train_lengths: list[int] | None = None  # sub-words per training post, when bucketing

    def say(self, message: str) -> None:
        """A line in the log, printed once (by the main process)."""
        if self.accelerator is None or self.accelerator.is_main_process:
            print(message, flush=True)

    # -- data ---------------------------------------------------------------------------------------

    def _prepare(self, model_config: MMIBConfig, dataset: Dataset) -> dict[str, PreparedSplit]:
        train = self.train_config
        side = cached_image_side(model_config, train.captions, train.feature_cache, self.accelerator.device)
        # The main process fills the feature cache first; the others then only read it.
        with self.accelerator.main_process_first():
            show = self.progress and self.accelerator.is_main_process
            prepared = {split: prepare_split(dataset, split, side, show) for split in self._splits()}
        self.image_side_report = side.report()
        if "image_features" in self.image_side_report:
            self.say(str(self.image_side_report["image_features"]))
        return prepared

    def _logged_epochs(self) -> list[dict]:
        return self.run.read_metrics() if self.run.metrics.exists() else []

    def _holds_a_run(self) -> bool:
        """Whether the folder has what a training run leaves (weights, a checkpoint or logged epochs)."""
        return (
            self.run.best_weights.exists()
            or self.run.last_state.exists()
            or bool(self.run.metrics.exists() and self.run.metrics.read_text().strip())
        )

    def _splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test") if self.train_config.score_test_each_epoch else ("train", "dev")

    # -- main loop ----------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict:
        train = self.train_config
        if train.threads:
            torch.set_num_threads(train.threads)
        accelerator = self.accelerator = make_accelerator(
            train.device, train.precision, train.dist_timeout_minutes
        )
        dataset = self._dataset()
        # The CNN is built here to read its width and again by the image side in _prepare. Building it once
        # would save a second or two, but its layers' initialisation draws from torch's global generator after
        # set_seed below: one build fewer changes every later dropout mask, and recorded runs would no longer
        # rerun to the same figures.
        feature_dim = feature_width(train.model)
        if resume:
            model_config = MMIBConfig.load(self.run.model_config)
        else:
            model_config = model_config_for(train, dataset, feature_dim)
        resume = self._check_folder(resume)
        set_seed(train.seed)
        model, tokenizer = build_model(model_config)
        if accelerator.is_main_process and not resume:  # a fresh run, or one restarted before an epoch ended
            self._start_folder(model, tokenizer)
        accelerator.wait_for_everyone()
        prepared = self._prepare(model_config, dataset)
        collator = Collator.for_model(WordTokenizer.for_model(tokenizer, model_config), model_config)
        self.train_lengths = collator.lengths(prepared["train"]) if train.bucket_by_length else None
        steps_per_epoch = len(
            epoch_batches(prepared["train"], train.batch_size, seed=0, lengths=self.train_lengths)
        )
        optimizer = make_optimizer(model, train, accelerator.device.type)
        scheduler = make_scheduler(
            optimizer, steps_per_epoch * train.epochs, train.warmup_ratio, train.final_lr_ratio
        )
        self.kl_warmup_steps = int(train.kl_warmup_ratio * steps_per_epoch * train.epochs)
        state = self._restore(model, optimizer, scheduler) if resume else TrainingState()
        # The scheduler stays ours: one step per optimiser step, whatever the number of processes.
        wrapped, optimizer = accelerator.prepare(model, optimizer)
        hardware = describe(accelerator, train.precision, train.grad_accum, train.batch_size)
        self.say(
            f"training on {hardware.device}, {hardware.processes} process(es), precision {hardware.precision}, "
            f"effective batch {hardware.effective_batch} ({hardware.grad_accum} accumulation step(s))"
        )
        self._epochs(wrapped, model, collator, prepared, optimizer, scheduler, state)
        summary = self._summary(state, hardware)
        if accelerator.is_main_process:
            self.run.write_json(self.run.summary, summary)
        accelerator.wait_for_everyone()
        return summary

    def _dataset(self) -> Dataset:
        """The run's dataset, refused in one line when a split training needs is empty."""
        train = self.train_config
        dataset = load_dataset(train.data, image_root=train.images)
        for split in self._splits():
            if not dataset.splits.get(split):
                where = dataset.files.get(split, dataset.path)
                needs = "train, dev and (score_test_each_epoch) test" if split == "test" else "train and dev"
                raise SettingError(f"{where}: no {split} records; training needs a non-empty {needs} split")
        if train.max_train_samples:
            dataset.splits["train"] = dataset.splits["train"][: train.max_train_samples]
        return dataset

    def _check_folder(self, resume: bool) -> bool:
        """Whether the run continues: a resumed run with no finished epoch starts again; a fresh run never
        overwrites another unless asked."""
        if resume and not self.run.last_state.exists():
            if logged := self._logged_epochs():
                raise FileNotFoundError(
                    f"{self.run.last_state}: missing, but {self.run.metrics.name} logs "
                    f"{len(logged)} epoch(s): nothing to resume from and a fresh start would "
                    "overwrite them (train into another --out, or pass --overwrite without --resume)"
                )
            # Stopped before its first epoch ended: nothing to continue from. Seeds make a fresh start the
            # same run, so start it again rather than fail.
            self.say(f"{self.run}: no epoch had finished before the stop; starting the run again")
            return False
        if not resume and not self.overwrite and self._holds_a_run():
            raise FileExistsError(
                f"{self.run}: already holds a training run; --resume continues it, --overwrite replaces it, "
                "or choose another --out"
            )
        return resume

    def _start_folder(self, model: MMIBModel, tokenizer) -> None:
        """A fresh run's folder: nothing of an overwritten run (it could be resumed or scored as this one's),
        the model's files and the settings."""
        for stale in (self.run.last_state, self.run.best_weights):
            stale.unlink(missing_ok=True)
        save_pretrained(model, tokenizer, self.run)
        self.run.write_json(self.run.train_config, self.train_config.with_absolute_paths().to_dict())
        self.run.metrics.write_text("")

    def _epochs(self, wrapped, model, collator, prepared, optimizer, scheduler, state: TrainingState) -> None:
        """Epochs until the budget, patience or --stop-after-epochs ends them; each scored on dev (and on
        test with score_test_each_epoch, logged only), the best dev epoch's weights kept."""
        train, accelerator = self.train_config, self.accelerator
        main = accelerator.is_main_process
        epochs_this_process = 0
        while state.epoch < train.epochs:
            if train.patience and state.epochs_without_improvement >= train.patience:
                self.say(f"early stop: no better dev F1 for {train.patience} epochs")
                break
            if train.stop_after_epochs is not None and epochs_this_process >= train.stop_after_epochs:
                break
            losses = self._train_epoch(
                wrapped, model, collator, prepared["train"], optimizer, scheduler, state
            )
            dev = evaluate_split(model, collator, prepared["dev"], train.eval_batch_size, accelerator)
            # test after every epoch only on request, logged beside dev and never read for selection
            test = (
                evaluate_split(model, collator, prepared["test"], train.eval_batch_size, accelerator)
                if train.score_test_each_epoch
                else None
            )
            improved = dev["f1"] > state.best_f1
            if improved:
                state.best_f1, state.best_epoch, state.epochs_without_improvement = dev["f1"], state.epoch, 0
                if main:
                    save_weights(model, self.run.best_weights)
            else:
                state.epochs_without_improvement += 1
            if main:
                self._log_epoch(state, losses, dev, improved, test)
            self._save_last(model, optimizer, scheduler, state)
            epochs_this_process += 1

    def _summary(self, state: TrainingState, hardware) -> dict:
        train = self.train_config
        summary = {
            "best_epoch": state.best_epoch,
            "best_dev_f1": state.best_f1,
            "epochs_completed": state.epoch,
            "train_seconds": round(state.train_seconds, 1),
            "train_samples_per_second": round(state.train_samples / max(state.train_seconds, 1e-9), 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            **peak_gpu_memory(self.accelerator.device),
            "hardware": hardware.as_dict(),
            "finished": state.epoch >= train.epochs
            or bool(train.patience and state.epochs_without_improvement >= train.patience),
        }
        if "image_features" in self.image_side_report:
            summary["image_features"] = str(self.image_side_report["image_features"])
        if "captions" in self.image_side_report:
            summary["captions"] = self.image_side_report["captions"]
        return summary

    def _train_epoch(
        self, wrapped, model, collator, split, optimizer, scheduler, state: TrainingState
    ) -> dict[str, float]:
        """One pass over the training posts; returns the epoch's mean losses.

        ``wrapped`` is what Accelerate made of ``model`` (DDP over several processes, an autocast forward
        with mixed precision, the model itself otherwise); ``model`` is the bare module.
        """
        accelerator = self.accelerator
        world = accelerator.num_processes
        wrapped.train()
        # The shuffle of epoch e depends only on (seed, e): a resumed run sees the same batches.
        batches = epoch_batches(
            split,
            self.train_config.batch_size,
            seed=self.train_config.seed * 1000 + state.epoch,
            lengths=self.train_lengths,
        )
        totals: dict[str, float] = {}
        start = time.perf_counter()
        bar = tqdm(
            batches,
            desc=f"epoch {state.epoch + 1}/{self.train_config.epochs}",
            unit="batch",
            disable=not (self.progress and accelerator.is_main_process),
        )
        for step, posts in enumerate(bar, start=1):
            if self.kl_warmup_steps:  # beta_i ramps linearly from 0 to its value over the warm-up steps
                model.kl_scale = min(1.0, scheduler.last_epoch / self.kl_warmup_steps)
            records = sum(len(split.post_records[p]) for p in posts)
            pieces = micro_batches(process_share(posts, accelerator), self.train_config.grad_accum)
            optimizer.zero_grad(set_to_none=True)
            for number, piece in enumerate(pieces):
                # The piece's share of the global batch (x world: DDP averages gradients over processes).
                weight = sum(len(split.post_records[p]) for p in piece) * world / records
                if not piece:  # fewer posts than processes x steps: a weightless stand-in keeps DDP in step
                    piece, weight = posts[:1], 0.0
                with sync_unless(accelerator, wrapped, skip=number < len(pieces) - 1):
                    output = wrapped(collator(split, piece).to(accelerator.device))
                    accelerator.backward(output.loss * weight if weight != 1.0 else output.loss)
                for key, value in {"loss": output.loss.item(), **output.parts}.items():
                    totals[key] = totals.get(key, 0.0) + value * weight / world
            accelerator.clip_grad_norm_(wrapped.parameters(), self.train_config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            state.train_samples += records
            bar.set_postfix(loss=f"{totals['loss'] * world / step:.3f}")
            every = self.train_config.log_every
            if not self.progress and every and (step % every == 0 or step == len(batches)):
                elapsed = time.perf_counter() - start  # logs have no progress bar: a plain line instead
                self.say(
                    f"epoch {state.epoch + 1} step {step}/{len(batches)}: loss {totals['loss'] * world / step:.4f} "
                    f"({elapsed:.0f} s)"
                )
        state.train_seconds += time.perf_counter() - start
        state.epoch += 1
        totals = self._sum_over_processes(totals)
        return {k: v / max(1, len(batches)) for k, v in totals.items()}

    def _sum_over_processes(self, totals: dict[str, float]) -> dict[str, float]:
        """Each process holds its share of the epoch's losses; the epoch's means need their sum."""
        if self.accelerator.num_processes == 1:
            return totals
        keys = sorted(totals)
        values = torch.tensor([totals[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        summed = self.accelerator.reduce(values, reduction="sum")
        return dict(zip(keys, summed.tolist(), strict=True))

    def _log_epoch(
        self, state: TrainingState, losses: dict[str, float], dev: dict, improved: bool, test: dict | None
    ) -> None:
        record = {
            "epoch": state.epoch,
            "train": losses,
            "dev": {k: dev[k] for k in ("precision", "recall", "f1")},
            "best": improved,
            "train_seconds_total": round(state.train_seconds, 1),
            "train_samples_per_second": round(state.train_samples / max(state.train_seconds, 1e-9), 2),
        }
        if test is not None:  # score_test_each_epoch: for the protocol-gap measurement only
            record["test_each_epoch"] = {k: test[k] for k in ("precision", "recall", "f1")}
        self.run.append_metrics(record)
        self.say(
            f"epoch {state.epoch}: loss {losses['loss']:.4f}  dev P {dev['precision']:.4f} "
            f"R {dev['recall']:.4f} F1 {dev['f1']:.4f}{'  (best)' if improved else ''}"
        )

    def _save_last(self, model, optimizer, scheduler, state: TrainingState) -> None:
        """Everything to continue the run: weights, optimiser, scheduler, and every process's RNG state
        (processes draw different dropout masks; each gets its own stream back)."""
        from accelerate.utils import gather_object

        generators = gather_object([(torch.get_rng_state(), random.getstate())])
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()
            return
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": vars(state),
            "rng_per_process": [list(g) for g in generators],
        }
        self.run.save_last(payload)
        self.accelerator.wait_for_everyone()

    def _restore(self, model, optimizer, scheduler) -> TrainingState:
        """Load last.pt into the bare model and optimiser (before Accelerate moves them to the device)."""
        payload = self.run.load_last(needed=("model", "optimizer", "scheduler", "state"))
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        # checkpoints written before several processes existed hold one state as torch_rng / python_rng
        per_process = payload.get("rng_per_process") or [(payload["torch_rng"], payload["python_rng"])]
        rank = self.accelerator.process_index
        torch_rng, python_rng = per_process[rank] if rank < len(per_process) else per_process[0]
        torch.set_rng_state(torch_rng)
        version, internal, gauss = python_rng
        random.setstate((version, tuple(internal), gauss))
        state = TrainingState(**payload["state"])
        if (
            self.accelerator.is_main_process
        ):  # a kill between the metrics line and last.pt: drop the later lines
            self.run.keep_metrics_through(state.epoch)
        self.say(f"resumed {self.run} after epoch {state.epoch} (best dev F1 {state.best_f1:.4f})")
        return state
