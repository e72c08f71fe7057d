"""One typed configuration tree for cleanplate.

Precedence: CLI flags > ``--config FILE.yaml`` > ``--profile NAME`` > defaults.
Every section is a frozen pydantic model with ``extra="forbid"`` so an unknown key is an
error that names the key. ``Config.stage_hash(stage)`` gives the hash used by resume.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cleanplate.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class InputConfig(_Section):
    recursive: bool = Field(False, description="Look for frames in sub-folders too.")
    every: int = Field(1, ge=1, description="Video input: keep every N-th decoded frame.")
    limit: int | None = Field(None, ge=1, description="Process at most N frames.")
    max_side: int = Field(
        8192, ge=64, description="Frames whose longer side exceeds this are recorded as failed."
    )


class SaliencyConfig(_Section):
    model: str = Field("u2netp", description="Saliency weights from the registry (u2netp, u2net, isnet-anime, ...).")
    threshold: float = Field(0.5, gt=0, lt=1, description="Threshold on the min-max normalised saliency map.")
    low_threshold: float = Field(
        0.2, gt=0, lt=1,
        description="Hysteresis: weaker saliency (down to this) is kept where it touches a region above "
        "'threshold' — a half-turned body or a shadowed arm stays attached to its character.",
    )
    input_size: int | None = Field(None, ge=32, description="Model input side; default: the model's own.")


class Sam2Config(_Section):
    model_type: str = Field("sam2.1_hiera_tiny", description="sam2_hiera_{tiny,small,base_plus,large} or sam2.1_hiera_*.")
    checkpoint: str | None = Field(None, description="Local checkpoint (folder or file) instead of the registry.")
    points_per_side: int = Field(32, ge=1)
    points_per_batch: int = Field(64, ge=1)
    pred_iou_thresh: float = Field(0.88, ge=0, le=1)
    stability_score_thresh: float = Field(0.95, ge=0, le=1)
    stability_score_offset: float = Field(1.0)
    mask_threshold: float = Field(0.0)
    box_nms_thresh: float = Field(0.7, ge=0, le=1)
    crop_n_layers: int = Field(0, ge=0)
    crop_nms_thresh: float = Field(0.7, ge=0, le=1)
    crop_overlap_ratio: float = Field(512 / 1500, ge=0, lt=1)
    crop_n_points_downscale_factor: int = Field(1, ge=1)
    min_mask_region_area: int = Field(0, ge=0)
    multimask_output: bool = Field(True)
    cache_clear_interval: int = Field(0, ge=0, description="Empty the CUDA cache every N frames (0: never).")
    lowres_filter: bool = Field(
        True, description="Drop masks far below stability_score_thresh on the low-resolution logits before "
        "upsampling them to the frame (the exact threshold still applies at full resolution).")
    encoder_batch: int = Field(
        4, ge=1, description="Frames per image-encoder call when the segment stage hands over a batch "
        "(segment_batch; whole-frame embeddings only, i.e. crop_n_layers 0 or salient-boxes prompts).")
    compile: bool = Field(False, description="torch.compile the image encoder (slow first frames, faster after; "
                          "worth it on a GPU for long runs).")


class ShotSegmentConfig(_Section):
    method: str = Field(
        "tracks", description="Shot-level character finding run over each shot's per-frame results "
        "(a registered shot segmenter: tracks — background model + optical-flow tracks + shadows, no "
        "downloads; sam3; sam2-video; auto — sam3 when its weights are here, else tracks; none: per-frame "
        "results only).")
    work_side: int = Field(
        512, ge=64, description="tracks: registration, background model and optical flow run on frames "
        "scaled to this long side (masks are scaled back).")
    flow_preset: Literal["ultrafast", "fast", "medium"] = Field(
        "fast", description="tracks: OpenCV DIS optical-flow preset that carries masks between frames.")
    bg_threshold: float = Field(
        28.0, gt=0, description="tracks: colour distance (0-255 levels) from the registered neighbours "
        "above which a pixel disagrees with the background model.")
    link_iou: float = Field(
        0.25, gt=0, le=1, description="tracks: a detection continues a track when its IoU with the track's "
        "mask carried by flow reaches this (or one holds 60 % of the other).")
    max_growth: float = Field(
        2.5, gt=1, description="tracks: a detection more than this many times the area of the track it "
        "continues is clipped to where the track was expected (saliency spilling onto scenery).")
    max_carry: int = Field(
        12, ge=0, description="tracks: frames a track's mask is carried by optical flow where the detector "
        "misses it (each side of its detections).")
    scenery_foreground: float = Field(
        0.2, ge=0, le=1, description="tracks: a track whose pixels disagree with the background model at least "
        "this much moves enough to be cut down to its moving core (tight masks) and to keep a detection its "
        "mask left.")
    moving_share: float = Field(
        0.3, ge=0, le=1, description="tracks: a track moves against the set, and is a character, when at least "
        "this share of its pixels disagrees with the background model (one of the two kinds of evidence of a "
        "character without a concept model; the other is change_share). Read off the clips (in-sample): "
        "parallax of a fence and trees under a pan 0.24, a tree trunk's track on bmx-trees 0.20; the DAVIS "
        "riders and player 0.45-0.88; Sintel's girl 0.27, who changes inside (0.42).")
    change_share: float = Field(
        0.2, ge=0, le=1, description="tracks: a track that stays in place is a character when at least this "
        "share of its inner pixels differs from the registered neighbours' median by more than change_level "
        "(a person breathing, gesturing, turning a head); a rigid prop that never changes stays under it. "
        "Without a concept model, a track with neither kind of evidence is scenery, whatever its saliency or "
        "persistence. Read off the bench cases of issue 26 (in-sample): the still crates 0.06, the still "
        "rider pasted unchanged 0.16 (jitter of a whole-pixel paste), the rider's changing cut-outs 0.53.")
    near_moving_share: float = Field(
        0.3, ge=0, le=1.01, description="tracks: a track the background model cannot judge (fewer than half its "
        "pixels seen by two registered neighbours 3 frames away or more: a panning frame's edge) is a character "
        "when at least this share of the pixels its nearest registered frames (1 and 2 away) see differ from "
        "them by more than bg_threshold (it left the place where it was a frame ago; a still prop at the edge "
        "is where the registration puts it). Such a track keeps its detected frames only (the optical flow lost "
        "it: carried masks would be ghosts). The same level as moving_share; measured on the bench cases of "
        "issue 26 (in-sample): the fast rider entering three-characters 0.69, an unjudged tree on nobody-bmx "
        "0.007. 1.01: never.")
    near_min_seen: float = Field(
        0.25, ge=0, le=1, description="tracks: a detected frame counts in near_moving_share when its nearest "
        "registered frames see at least this share of the track there (a body entering at a panning frame's "
        "edge: the frame after sees only part of it). In-sample: the fast rider's first frame of "
        "three-characters is 39 % seen.")
    change_level: float = Field(
        14.0, gt=0, description="tracks: colour distance (0-255 levels) from the neighbours' median above which a "
        "pixel inside a track counts as changed (half of bg_threshold).")
    tighten_max_area: float = Field(
        0.15, ge=0, le=1, description="tracks: a moving track is cut down to its moving core only while its "
        "typical detected mask covers at most this share of the frame: the saliency model sees the frame at "
        "320x320, so its masks of small characters are blobs 2-3x their size, while those of large ones "
        "follow their outline (where cutting would only lose a slow arm or head). 0: never cut.")
    thin_margin: float = Field(
        0.08, ge=0, description="tracks: in a frame where the detector found a tightened track, its thin parts "
        "(faint foreground joined to the moving core: tyres, spokes, a racket's frame) stay, where the scenery "
        "around is cluttered (thin_clutter), inside the detection grown by this share of the side of a square "
        "of its area (at least 2 px at work scale): the detection says where the character is, and beyond it, under a pan through grass and foliage, the faint foreground "
        "is parallax clutter that floods around the core (DAVIS bmx-trees' last frames: masked area 2-3.6x the "
        "truth). A carried frame's mask may have drifted off the character, so its thin parts keep their full "
        "reach. Read off bmx-trees (in-sample): 0.08 is about 4 px on its rider; bounding every detected "
        "frame, 2 px cost 0.008 of mean recall, 6 px kept 0.025 more of the area. 0: unbounded (the full reach in every frame).")
    thin_clutter: float = Field(
        0.45, ge=0, le=1.01, description="tracks: thin_margin bounds a detected frame's thin parts only where the "
        "faint foreground covers at least this share of the scenery around the character (a ring beyond the "
        "thin parts' reach, outside the detection, seen by two registered neighbours): there it is parallax "
        "clutter (DAVIS bmx-trees' last frames 0.50-0.67), while on a quieter set it is the character's own "
        "tyres, racket or limbs the detection missed (bmx-trees' middle frames 0.2-0.25, where bounding them "
        "lost recall). In-sample: 0.35 cut bmx-trees' per-frame area ratio to 1.34 but lost the still-character "
        "bench case's rider in a frame (min recall 0.995 -> 0.957); 0 (bound every detected frame) 1.29, but "
        "the bench's tennis players lost their racket arm (min recall 0.979 -> 0.950). 1.01: never bound.")
    core_agree: float = Field(
        0.45, ge=0, le=1.01, description="tracks: a carried frame's mask (carried along the optical flow where the "
        "detector missed the character) agrees with the frame's moving core when their IoU reaches this: both say "
        "where the character is, and its thin parts are bounded where the scenery around is cluttered at "
        "agree_clutter. A carried frame that does not agree (the flow lost the character, the core went on "
        "without it) keeps its thin parts' full reach but no other outline from the carried mask than the core, "
        "and takes no cast shadow (lost_shadows). Read off DAVIS bmx-trees (in-sample): the rider's track carried "
        "back through frames 69-74 0.49-0.63; carried masks the core left (the rider behind foliage, a companion "
        "track on the trees) 0-0.32. 0 with agree_clutter 1.01: every carried frame agrees and none is bounded "
        "(as before).")
    agree_clutter: float = Field(
        1.01, ge=0, le=1.01, description="tracks (1.01, never, by default): in a carried frame whose mask agrees with its moving core "
        "(core_agree), the thin parts stay inside the mask and the core grown by thin_margin of the side of a "
        "square of their area where the faint foreground covers at least this share of the scenery around "
        "(clutter, as thin_clutter for detected frames). In-sample, DAVIS bmx-trees: the grass around the rider "
        "carried back through frames 69-74 0.27-0.29 (per-frame area 1.30-1.97x the dilated truth -> "
        "1.01-1.24x). Detected frames keep thin_clutter: bounding the agreeing detected ones at 0.25 too took "
        "the bench's still-character rider's min recall 0.995 -> 0.984. 1.01: never. Not the default: at 0.25 "
        "bmx-trees' per-frame area falls 1.315 -> 1.281 (1.287 -> 1.253 with shadow_moved at 0.93), but on the fill bench's held-out tennis-over-bmx "
        "composite the player's recall falls 0.991 -> 0.986, 10 % of him left in one plate (frame 9: 1.6 % "
        "before).")
    lost_shadows: bool = Field(
        False, description="tracks (with masks.shadows): a carried frame whose mask the moving core left (IoU "
        "under core_agree: the flow lost the character, behind foliage) also takes a cast shadow. Off: there the "
        "dark ground and branches beside the core passed for his shadow (DAVIS bmx-trees frames 57 and 61: "
        "1.80x and 1.86x the dilated truth -> 1.43x and 1.36x, recall 1.0 and 0.99; with the carried mask's "
        "outline left out there too, 1.37x and 1.21x; in-sample).")
    shadow_moved: float = Field(
        0.93, gt=0, le=1, description="tracks (with masks.shadows): a dark region touching a character's base is "
        "its cast shadow only where the shadow moved: a share of its pixels (at least a tenth) darker than this "
        "times the shot's background model there (a long shadow overlaps itself from frame to frame, so only "
        "part of it shows; what does not move is shade the set casts). 0.97 (before) took a 3 % dip, within "
        "the flicker of grain and parallax: its scattered specks covered a tenth of the shade along the foot "
        "of a wall (DAVIS bmx-trees) and of the court's shaded edge (DAVIS tennis), which joined the mask. "
        "Read off those two clips (in-sample), per-frame area over the dilated truth / mean recall: 0.97 "
        "1.315 / 0.958 and 1.161 / 0.986; 0.93 1.287 / 0.957 and 1.081 / 0.986; 0.90 1.277 / 0.957 and "
        "1.054 / 0.985; 0.85 1.271 and 1.017, but tennis's own shadow (in its truth) was lost in a frame "
        "(min recall 0.923 -> 0.692).")
    companion_reach: int = Field(
        1, ge=-1, description="tracks: a companion (a weak mover kept only because it touches a character's track: "
        "a piece of that character the linker kept apart) keeps its frames up to this many frames from that "
        "character's track and loses the others (recorded in the instance evidence of the frames it keeps): "
        "beyond them it is a piece of nobody. On bmx-trees a foliage track joined the rider's and was carried "
        "for 12 frames after his track ended; 0 lost the rider in the frame after (recall 0.84 -> 0.23), so "
        "1 (in-sample). -1: companions keep all their frames.")
    refine: bool = Field(
        True, description="tracks: a track's mask that is not cut to its moving core (a large or still character: "
        "the detector's blob) is refined by colour and edges (GrabCut over its border band, at work scale): seeded "
        "with what moves or changes in it (else, with refine_still, the detector's confident core) as the character "
        "and the far outside plus what agrees with the background model as the set, so scenery the detector joined "
        "to the character (rocks, crates, a wall beside him) leaves the mask; only what the track's neighbouring "
        "frames remove alike stays removed (refine_steady). Measured with the defaults: the bench's "
        "large-character-beside-prop frees 64 % of the crates' pixels (17 % unrefined), the player's recall 0.975 "
        "as unrefined; on the 10 Sintel frames the girl keeps >= 97 % of her unrefined mask's interior in every "
        "frame (without refine_steady one frame kept 49 %); DAVIS and the other bench cases unchanged (their "
        "tracks are cut to their moving cores).")
    refine_band: float = Field(
        0.15, gt=0, le=1, description="tracks: width of the border band refined by colour, as a share of the side "
        "of a square of the blob's area; beyond it outside the blob is sure background. In-sample (the "
        "large-character-beside-prop bench case).")
    refine_agree: float = Field(
        14.0, gt=0, description="tracks: a pixel the background model can judge (not hidden) that is within this "
        "colour distance (0-255) of the registered neighbours' median, and neither moves nor changes, is sure "
        "background for the colour refinement (half of bg_threshold).")
    refine_core: float = Field(
        0.9, gt=0, le=1, description="tracks: saliency (0-1) of the detector's confident core, the character's seed "
        "for the colour refinement when nothing in the blob moves or changes (eroded by 4 % of the blob's side).")
    refine_still: bool = Field(
        False, description="tracks: also refine by colour a blob where nothing moves (seeded by the detector's "
        "confident core alone). Off: on the still-character case built with 12 frames and a concept model naming "
        "the rider, that seed drops his thin wheels in the last three frames alike (recall mean / min 0.987 / 0.900 "
        "with refine_steady, 0.947 / 0.849 without; 0.999 / 0.995 unrefined): a steady error the steadiness check "
        "cannot see. A still character keeps the detector's blob.")
    refine_min_keep: float = Field(
        0.4, ge=0, le=1, description="tracks: a colour refinement that keeps less than this share of the blob is "
        "not used (the blob stays; recorded in the instance evidence). In-sample guard.")
    refine_min_evidence: float = Field(
        0.05, ge=0, le=1, description="tracks: share of the blob that must move or change before that evidence "
        "seeds the character in the colour refinement (else the confident core does).")
    refine_iterations: int = Field(4, ge=1, le=20, description="tracks: GrabCut iterations of the colour refinement.")
    refine_steady: float = Field(
        0.5, ge=0, le=1, description="tracks: a pixel the colour refinement removes from a track's blob stays removed "
        "only when more than this share of the track's frames within refine_window whose blob holds it (carried "
        "along the registration; the frame itself counted) remove it too; else it is given back (recorded in the "
        "instance evidence, refine.restored_px). Scenery beside a character stands still in the set and is removed "
        "alike in every frame; a colour model misled in one frame (the Sintel girl's still shoulder taken for the "
        "wall) removes what its neighbours keep. 0: off.")
    refine_agreed: bool = Field(
        True, description="tracks: with refine_steady, a frame's blob is refined again with what more than "
        "refine_steady of the track's neighbouring frames (at least two) removed as sure background, where it "
        "neither moves nor changes in the frame: scenery a colour model kept in one frame (the bench's crates taken "
        "for the player's dark shorts) leaves it as it left the neighbours.")
    refine_window: int = Field(
        4, ge=1, description="tracks: frames each side of a frame whose refinement of the same track is compared "
        "with its own (refine_steady).")
    hidden_by_characters: bool = Field(
        True, description="tracks: after the verdicts, the background model's hidden pixels (where it cannot judge "
        "a mask, because detections cover them in most neighbours) count only the kept characters' detections, "
        "not the candidates judged scenery: a tree trunk the detector keeps jumping to no longer keeps a "
        "character's mask on it (DAVIS bmx-trees).")
    scenery_parts: bool = Field(
        True, description="tracks: a connected part of a character's mask apart from the character (the part "
        "holding its motion), that does not move or change itself (at most scenery_part_motion of its pixels) "
        "and touches no other character, is scenery: it leaves the mask and is recorded as a scenery instance "
        "(and in the character's evidence, scenery_parts).")
    scenery_part_motion: float = Field(
        0.05, ge=0, le=1, description="tracks: largest share of moving or changing pixels of a part split off a "
        "character's mask as scenery.")
    jump_error: float = Field(
        40.0, gt=0, description="tracks: mean gray error (0-255) of the flow-warped previous frame above "
        "which two frames are not linked (a missed cut or a flash): no track crosses it.")
    motion_born: bool = Field(
        True, description="tracks: what moves against the registered set where no track is — consistently over "
        "motion_min_frames frames, character-sized, solid, as one motion and against the scenery around it "
        "(motion_min_contrast) — starts a track of its own (reason motion), its mask the salient region of a "
        "saliency crop around it (a second or fast character the full-frame detector misses). On the bench cases "
        "of issue 26: with the small rider's detections removed on two-characters it finds him (recall about 1.0 "
        "from his fourth frame on); the parallax of the fence under nobody-tennis's pan, which passed the other "
        "gates, is turned away by the contrast gate. Off: only detected candidates become tracks.")
    motion_min_area: float = Field(
        0.004, ge=0, le=1, description="tracks: a motion candidate covers at least this share of the frame (work "
        "scale): smaller disagreement is flicker, not a character.")
    motion_density: float = Field(
        0.5, ge=0, le=1, description="tracks: share of a motion candidate's closed region that must disagree with "
        "the set (a body disagrees solidly; parallax of near scenery and leaves in wind along thin edges).")
    motion_coherence: float = Field(
        0.6, ge=0, le=1, description="tracks: |mean| over mean |.| of the optical flow inside a motion candidate "
        "less the registration's (1: one motion, as a rigid or walking body; foliage flickers every way).")
    motion_min_speed: float = Field(
        1.0, ge=0, description="tracks: a motion candidate's mean flow less the registration's, at least this "
        "many work-scale px per frame.")
    motion_min_contrast: float = Field(
        0.005, ge=0, description="tracks: a motion candidate moves against the scenery around it, not only against "
        "the registration: the median over its chain of |its median residual flow - that of a ring of scenery "
        "around it| reaches this share of the frame's long side per frame. Parallax of near scenery under a "
        "moving camera leaves the homography as a whole layer, which the scenery around it shares; a body moving "
        "on its own leaves its surroundings behind. Read off the bench cases of issue 26 (in-sample): the fence "
        "and bush of nobody-tennis under its pan 0.0026, the small rider of two-characters 0.016; candidates "
        "on DAVIS bmx-trees and tennis that fail the other gates 0.0003-0.0008.")
    motion_min_frames: int = Field(
        4, ge=2, description="tracks: a motion candidate must be linked along the flow over at least this many "
        "consecutive frames (a region that appears and disappears at random is not a character).")


class Sam2VideoConfig(_Section):
    model_type: str = Field("sam2.1_hiera_tiny", description="sam2-video: SAM2 model (the sam2 registry names; "
                            "their Hugging Face folders hold the video model too).")
    checkpoint: str | None = Field(None, description="sam2-video: local transformers folder instead of the registry.")
    mask_threshold: float = Field(0.0, description="sam2-video: mask logit threshold.")
    max_objects: int = Field(16, ge=1, description="sam2-video: at most this many key-frame characters are tracked.")


class Sam3Config(_Section):
    checkpoint: str | None = Field(None, description="sam3: local transformers folder (facebook/sam3) instead of "
                                   "the registry; the weights are gated on the Hugging Face hub.")
    prompt: str = Field("person. character. creature. animal.",
                        description="sam3: text prompts, one concept per sentence, found and tracked in every frame.")
    score_threshold: float = Field(0.5, ge=0, le=1, description="sam3: keep objects scoring at least this.")


class ConceptConfig(_Section):
    model: Literal["auto", "sam3", "grounding-dino", "owlv2", "none"] = Field(
        "auto", description="Concept model that names characters by text prompt: auto (the best one whose "
        "weights are already on disk, in the order sam3, grounding-dino, owlv2; never downloads; none present: "
        "the offline decision), sam3, grounding-dino, owlv2 (open-vocabulary detectors through transformers, "
        "no gated access), none.")
    prompt: str = Field("person. character. creature. animal.",
                        description="Concepts to find, one per sentence; each detection is labelled with one of them.")
    score_threshold: float | None = Field(
        None, ge=0, le=1, description="Keep detections scoring at least this (None: the model's own default: "
        "owlv2 0.2, grounding-dino 0.35).")
    text_threshold: float = Field(0.25, ge=0, le=1, description="grounding-dino: a concept's tokens must score at "
                                  "least this for a box to take its label.")
    nms_iou: float = Field(0.5, gt=0, le=1, description="Boxes overlapping a better one by this IoU are dropped "
                           "(whatever their labels: 'person' and 'character' fire on the same figure).")
    max_detections: int = Field(16, ge=1, description="At most this many detections per frame (best first).")
    box_masks: Literal["auto", "sam2", "saliency"] = Field(
        "auto", description="How a box becomes a mask: sam2 (a box prompt; segment.sam2.model_type), saliency "
        "(the saliency model run on a crop around the box, kept inside it); auto: sam2 when its weights are on "
        "disk, else saliency.")
    box_margin: float = Field(0.15, ge=0, le=1, description="saliency box masks: context around the box the "
                              "saliency model sees, as a fraction of the box's longer side.")
    owlv2_checkpoint: str | None = Field(None, description="owlv2: local transformers folder "
                                         "(google/owlv2-base-patch16-ensemble) instead of the registry.")
    grounding_dino_checkpoint: str | None = Field(None, description="grounding-dino: local transformers folder "
                                                  "(IDEA-Research/grounding-dino-tiny) instead of the registry.")


class ReviewTrackConfig(_Section):
    search: float = Field(
        0.15, gt=0, le=1, description="review: a clicked character's track, moved by its own optical flow into "
        "the next frame, snaps to where it holds the most moving pixels within this share of its size (the "
        "square root of its area). Read off DAVIS bmx-trees (in-sample).")
    max_growth: float = Field(
        1.1, ge=1, description="review: a clicked character's track grows by at most this factor of its area "
        "from one frame to the next (the pixels farthest from its salient core go first): a mask that takes "
        "the scenery beside the character would otherwise grow a little every frame. Read off DAVIS bmx-trees "
        "(in-sample).")


class SegmentConfig(_Section):
    backend: str = Field("saliency", description="Segmenter backend: saliency, sam2.")
    min_instance_size: int = Field(400, ge=0, description="Drop instances smaller than this many pixels.")
    batch_size: int = Field(
        8, ge=1, description="Frames handed to the segmenter at once when it takes batches (saliency, sam2): "
        "their models run on the frames together where they can (a GPU; the bundled u2netp takes one frame a "
        "call); the masks are the same. 1 = frame by frame.")
    select: Literal["all", "salient", "largest-k"] = Field(
        "all", description="Which instances are characters (sam2 backend)."
    )
    select_k: int = Field(3, ge=1, description="k for select: largest-k.")
    salient_overlap: float = Field(0.5, ge=0, le=1, description="select: salient — min overlap with saliency.")
    prompts: Literal["grid", "salient-boxes"] = Field("grid", description="sam2: automatic grid or saliency boxes.")
    saliency: SaliencyConfig = SaliencyConfig()
    sam2: Sam2Config = Sam2Config()
    shot: ShotSegmentConfig = ShotSegmentConfig()
    sam2_video: Sam2VideoConfig = Sam2VideoConfig()
    sam3: Sam3Config = Sam3Config()
    concept: ConceptConfig = ConceptConfig()
    review: ReviewTrackConfig = ReviewTrackConfig()


class MaskConfig(_Section):
    dilate: int = Field(
        20, ge=0, description="Dilate the combined mask by N px (elliptical kernel of radius N); with "
        "dilate_relative, N is in pixels of a 1080-line frame (20 -> 4 px at 432x240, 8 px at 1024x436).")
    dilate_relative: bool = Field(
        True, description="true: 'dilate' is in pixels of a 1080-line frame and scales with the frame's "
        "shorter side (the per-frame radius used is recorded as dilate_px); false: absolute pixels.")
    shadows: bool = Field(
        True, description="Shot level (segment.shot.method tracks): what moves with a character and touches "
        "it — its cast shadow on the ground, what it carries — joins its mask. false: the detector's and "
        "tracks' masks only.")
    feather: int = Field(0, ge=0, description="Feather the plate's seam over N px (0: hard edge).")


class LamaConfig(_Section):
    format: Literal["auto", "torchscript", "onnx"] = Field("auto")
    model: str = Field("big-lama", description="Registry name of the LaMa weights.")
    checkpoint: str | None = Field(None, description="Your own LaMa file (TorchScript .pt or ONNX).")
    strategy: Literal["original", "crop", "resize"] = Field("crop")
    working_size: int = Field(512, ge=64, description="Long side the crop/resize strategies scale to.")
    crop_margin: int = Field(128, ge=0, description="Context margin around each masked region (crop).")
    compile: bool = Field(False, description="TorchScript weights: freeze and optimise the graph for inference "
                          "(first calls per input shape are slow; worth it on a GPU with fixed shapes).")


class TemporalConfig(_Section):
    window: int = Field(4, ge=0, description="Neighbour frames on each side (K).")
    keyframes: int = Field(0, ge=0, description="Extra keyframes further away in the shot.")
    keyframe_stride: int = Field(8, ge=1, description="Keyframe k sits window + k*stride frames away (each side).")
    ring: int = Field(12, ge=2, description="Width (px) of the unmasked ring around each hole used for gain and checks.")
    gain: bool = Field(True, description="Per-channel gain compensation of each neighbour, from the ring.")
    neighbour_margin: int = Field(
        0, ge=0,
        description="Never borrow a neighbour's pixels within this many px of that neighbour's own removal mask "
        "(detectors miss thin parts of a character just outside it). Costs borrowed area: on the bench's "
        "tennis-over-bmx composite 8 px lowered PSNR from 23.7 to 20.9 dB, so it is off by default.",
    )
    border_tolerance: float = Field(10.0, gt=0, description="Reject a neighbour for a hole when its median "
                                    "difference from the ring around the hole exceeds this (0-255 levels).")
    carry_invented: bool = Field(
        True, description="Invent what no frame saw once and carry it along the shot's registration into the "
        "next frames, which invent only what is new to them: the invented region moves with the set and does "
        "not flicker (a character standing still for a whole shot). Off: every frame invents its hole anew.")
    carry_seen: bool = Field(
        True, description="The shot's invented layer also keeps the set as each frame shows it (its own "
        "scenery away from the characters, and what it borrowed), over what was invented there: a point of "
        "the set seen some frames ago and hidden again beyond the neighbours' reach comes back as it was "
        "seen, not invented again (still bench, held-out panning composite: 20.73 -> 21.21 dB).")
    carry_ring: float = Field(
        0.08, ge=0, le=0.5, description="Carried pixels move with the set right around their hole: the shot's "
        "registration is refined (affine, ECC) on a ring this wide around each hole, as a share of the frame's "
        "shorter side, so in a set with depth the invented ground does not slide against the ground beside it. "
        "0: the whole-frame registration. In-sample (the still-character bench case over Sintel).")
    carry_ring_move: float = Field(
        0.03, ge=0, le=0.5, description="The ring's refinement is dropped when it moves a ring pixel more than "
        "this share of the frame's shorter side away from the whole-frame registration.")


class ShotsConfig(_Section):
    """Shot detection and the shot model: every stage that reads a shot (characters, temporal fill,
    checks) reads the one model built from these settings, so all of them are in the resume hash of
    the segment and the fill stage."""

    detector: Literal["content", "adaptive", "none"] = Field(
        "content", description="PySceneDetect detector that finds cuts as the frames stream past (none: cuts "
        "only from scene ids in frame names and frame-size changes).")
    scene_threshold: float = Field(27.0, gt=0, description="detector: content — score that makes a cut.")
    adaptive_threshold: float = Field(3.0, gt=0, description="detector: adaptive — score ratio that makes a cut.")
    min_shot_length: int = Field(1, ge=1, description="Detector: frames a shot lasts at least (1: cut anywhere).")
    shot_pattern: str = Field(
        r"^(?P<shot>.*\d)[_.-]\d+$",
        description="Regex on frame ids; a change of its group 'shot' is a cut (scene0535_0012 -> scene0535). Empty: off.",
    )
    max_frames: int = Field(
        120, ge=2, description="Longest run of frames a shot-level stage holds at once (a shot window); longer "
        "shots are processed in consecutive windows of at most this many frames and at least half as many "
        "(memory bounded by the window).")
    work_side: int = Field(
        512, ge=64, description="The shot model registers each frame onto the one before it at this long side "
        "(its matrices are scaled to any resolution).")
    same_view_tolerance: float = Field(
        10.0, gt=0, description="A detector's cut is vetoed when the two frames register onto each other and "
        "the median difference of the scenery both show is at most this (0-255 levels): a fast pan, not a cut.")
    features: Literal["orb", "sift"] = Field("orb", description="Keypoints used to register the frames.")
    max_features: int = Field(1000, ge=100, description="Keypoints per frame (at work_side).")
    min_inliers: int = Field(25, ge=4, description="A registration with fewer RANSAC inliers fails (a new run of "
                             "registered frames starts).")
    max_reprojection_error: float = Field(2.5, gt=0, description="RANSAC inlier threshold (px at work_side).")
    ecc: bool = Field(
        True, description="Refine each homography with ECC (cv2.findTransformECC) for the temporal fill, which "
        "copies pixels along it (a pan found to the pixel is copied, not resampled). The characters stage's "
        "background model and the checks read the keypoint fit alone: chained through ECC, DAVIS bmx-trees' "
        "tracks lost the rider in 4 frames (recall 0.968 -> 0.906; issue 25).")
    snap_px: float = Field(0.15, ge=0, description="A warp within this many px of a whole-pixel shift copies "
                           "pixels without resampling (0: never).")
    direct_links: int = Field(
        4, ge=0, description="The shot model also registers each frame directly onto the frames up to this many "
        "before it (besides the chain of each frame onto the one before), and the temporal fill borrows "
        "along those direct links: chained, Sintel's neighbours 2-5 frames apart were 14-31 px off at the "
        "corners. Matches fill.temporal.window by default; a neighbour further away is read off the chain. "
        "Built only when a temporal fill reads them (run, inpaint; segment when fill.method is temporal+, "
        "stored with each frame's segment record for a later inpaint). 0: off (the chain only).")

    @property
    def ecc_max_side(self) -> int:
        """ECC works at the registration's own scale."""
        return self.work_side


class FillConfig(_Section):
    method: str = Field(
        "temporal+auto", description="opencv-telea, opencv-ns, patchmatch, exemplar, lama, auto (lama when its "
        "weights are on disk, else exemplar; never downloads), temporal+<method> (other frames of the shot first).")
    batch_size: int = Field(1, ge=1)
    workers: int = Field(
        0, ge=0, description="Frames filled at once on threads by fills that run on the CPU and release the GIL "
        "(patchmatch, opencv-*): 0 = run.threads when set, else one per CPU core (at most 4); 1 = one frame at a time. Plates are the same "
        "either way.")
    radius: int = Field(5, ge=1, description="OpenCV inpaint radius.")
    patch_size: int = Field(5, ge=3, description="PatchMatch patch size (odd).")
    seed: int = Field(0, description="Random seed of stochastic fills (PatchMatch), so reruns give the same plate.")
    guide_weight: float = Field(
        0.0, ge=0, le=100, description="PatchMatch guided by a smooth guess of the hole's structure (a Telea "
        "fill of the crop, blurred, in CIELAB lightness and a*): candidate patches are scored also by how well "
        "that guess around them matches it around the hole, with this weight against the patch distance, so the "
        "copied texture follows the light and colour that run into the hole. 0 (default): plain PatchMatch. "
        "At 1: +0.35 to +0.9 dB in the hole on the still-character bench cases filled frame by frame, +1.0 dB "
        "under the temporal fill over Sintel, but -0.9 dB under the temporal fill on the held-out composite "
        "and -1.35 dB on the fill bench's true masks, so it is not the default.")
    guide_blur: float = Field(
        0.01, ge=0, le=0.2, description="Blur (Gaussian sigma) of PatchMatch's structure guide, as a share of "
        "the crop's shorter side.")
    mask_dilate: int | None = Field(
        None, ge=0,
        description="Extra dilation the fill stage applies to masks read from disk "
        "(None: 0 for cleanplate's own masks, which are dilated already; masks.dilate for other mask folders).",
    )
    crop: bool = Field(
        True, description="PatchMatch and OpenCV fills: solve each hole (nearby holes together) in a crop "
        "around it instead of the whole frame (false: the whole frame at once, slow).")
    crop_context: float = Field(
        0.5, ge=0, description="Context kept around a hole on each side, as a fraction of its longer side.")
    crop_min_context: int = Field(32, ge=1, description="Context around a hole at least this many px.")
    crop_merge_gap: int = Field(16, ge=0, description="Holes closer than this many px are filled in one crop.")
    crop_work_pixels: int = Field(
        100_000, ge=0, description="A crop with more pixels is solved scaled down to this many, then brought "
        "back to full size (0: always full size). Lower is faster and smoother: on the bench 100000 against "
        "120000 changed PSNR by -0.02 dB (patchmatch) and 0 (temporal+patchmatch); 60000 halved the fill time "
        "but made the bmx-over-sintel fills flat (flat score 0.02 -> 0.15).")
    lama: LamaConfig = LamaConfig()
    temporal: TemporalConfig = TemporalConfig()


class OutputConfig(_Section):
    plate_format: Literal["jpg", "png"] = Field("jpg")
    jpeg_quality: int = Field(95, ge=1, le=100)
    save_instances: bool = Field(True, description="Write instances/<frame>_<k>.png cut-outs.")
    save_masks: bool = Field(True, description="Write instances/<frame>_<k>_mask.png for each instance.")
    context_mode: Literal["transparent", "black", "white", "blur", "context"] = Field("transparent")


class QAConfig(_Section):
    enabled: bool = Field(True, description="Run the automatic plate checks after filling.")
    residue_threshold: float = Field(
        0.3, ge=0, le=1,
        description="Flag plates that still show the character (the shot-aware score of a frame checked with its "
        "shot: kept character pixels, moving salient or character-coloured pixels beside or touching the mask; "
        "correct plates score up to ~0.3, plates showing the character 0.3-1). 0.3 from the bench's calibration "
        "curve: on each composite alone recall >= 0.95 and false flags <= 8 % from 0.25 to 0.3 (issue 12).")
    residue_threshold_alone: float = Field(
        0.08, ge=0, le=1,
        description="The same for a frame checked alone (fewer than 3 frames of one size), whose score is the "
        "frame-only one (real fills ~0.01; a missed hand ~0.2; the original 1).")
    flat_threshold: float = Field(
        0.25, ge=0, le=1,
        description="Flag fills made of flat colour blocks: flat share of the fill minus that of the ring "
        "around it (PatchMatch ~0.0-0.05; OpenCV smears of large holes 0.3-0.6).")
    seam_threshold: float = Field(
        1.35, ge=0,
        description="Flag a visible seam: colour step across the mask border relative to the steps 8 px "
        "either side (seamless ~0.5-1.0; an offset or brightened fill 1.5-3).")
    saliency_model: str = Field(
        "u2netp", description="Saliency weights the residue check runs on frame and plate (thresholds are "
        "calibrated on the bundled u2netp).")


class RunConfig(_Section):
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto")
    max_failed: float = Field(0.05, ge=0, le=1, description="Exit non-zero when more frames fail than this.")
    threads: int | None = Field(None, ge=1, description="CPU threads for model runtimes (default: all cores).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Torch models on CUDA: autocast dtype (auto: bf16 where the GPU supports it, "
        "else fp32). CPU and MPS run fp32.")
    runner: Literal["local", "ray"] = Field(
        "local", description="Where the stages run: local (this process; threads for decode and writes) or "
        "ray (Ray Data actor pools on a Ray cluster; pip install 'cleanplate[ray]').")
    ray_address: str | None = Field(
        None, description="runner: ray — address of the Ray cluster (e.g. ray://head:10001; default: start a "
        "local one, or the one RAY_ADDRESS names).")
    ray_actors: int = Field(1, ge=1, description="runner: ray — actors per model stage group.")
    ray_num_cpus: float = Field(1.0, gt=0, description="runner: ray — CPUs each actor reserves.")
    ray_num_gpus: float | None = Field(
        None, ge=0, description="runner: ray — GPUs each model actor reserves (default: 1 on cuda, else 0).")
    ray_chunk_frames: int = Field(
        512, ge=1, description="runner: ray — frames the driver hands to Ray at a time (driver memory is "
        "bounded by about two such chunks).")


class Config(_Section):
    profile: str = Field("default", description="Profile this config started from.")
    input: InputConfig = InputConfig()
    shots: ShotsConfig = ShotsConfig()
    segment: SegmentConfig = SegmentConfig()
    masks: MaskConfig = MaskConfig()
    fill: FillConfig = FillConfig()
    output: OutputConfig = OutputConfig()
    qa: QAConfig = QAConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def stage_parts(self, stage: Literal["segment", "fill"]) -> dict[str, Any]:
        """The settings that change a stage's outputs (not run-time knobs like limit or device)."""
        parts: dict[str, Any] = {"masks": self.masks.model_dump(mode="json"),
                                 "shots": self.shots.model_dump(mode="json")}
        if stage == "segment":
            # run-time knobs of the encoder do not change the masks
            parts["segment"] = self.segment.model_dump(mode="json", exclude={"batch_size": True, "sam2": {"encoder_batch", "compile"}})
            parts["max_side"] = self.input.max_side
            parts["output"] = {"context_mode": self.output.context_mode, "save_instances": self.output.save_instances,
                              "save_masks": self.output.save_masks}
        else:
            parts["fill"] = self.fill.model_dump(mode="json", exclude={"batch_size": True, "workers": True, "lama": {"compile"}})
            parts["output"] = {"plate_format": self.output.plate_format, "jpeg_quality": self.output.jpeg_quality}
        return parts

    def stage_hash(self, stage: Literal["segment", "fill"]) -> str:
        """Hash of :meth:`stage_parts`, stored with every frame record for resume."""
        blob = json.dumps(self.stage_parts(stage), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_NOT_PROFILES = {"scene_labels.yaml"}  # other YAML data shipped beside the profiles


def available_profiles() -> list[str]:
    root = resources.files("cleanplate") / "profiles"
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir()
                  if p.name.endswith(".yaml") and p.name not in _NOT_PROFILES)


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"invalid YAML in {origin}{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a mapping of settings, not {type(data).__name__}")
    return data


def _profile_dict(name: str) -> dict[str, Any]:
    if name not in available_profiles():
        raise ConfigError(f"unknown profile '{name}' (available: {', '.join(available_profiles())})")
    text = (resources.files("cleanplate") / "profiles" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"profile '{name}'")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _dotted_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = nested
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def _format_validation(exc: ValidationError, origin: str) -> str:
    msgs = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            msgs.append(f"unknown key '{loc}'")
        else:
            msgs.append(f"'{loc}': {err['msg']}")
    return f"invalid configuration ({origin}): " + "; ".join(msgs)


def load_config(
    profile: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Resolve a :class:`Config`.

    ``overrides`` maps dotted keys (``"fill.method"``) to values; ``None`` values are ignored,
    so CLI options that were not given fall through to the file, the profile and the defaults.
    A config file may name its own ``profile:``; an explicit ``profile`` argument wins.
    """
    file_data: dict[str, Any] = {}
    origin = ""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        file_data = _read_yaml(path.read_text(encoding="utf-8"), str(path))
        origin = str(path)
    name = profile or file_data.get("profile") or "default"
    if not isinstance(name, str):
        raise ConfigError(f"'profile' must be a profile name, got {name!r}")
    data = _merge(_profile_dict(name), file_data)
    nested = _dotted_to_nested(overrides or {})
    data = _merge(data, nested)
    data["profile"] = name
    origin = f"profile '{name}'" if config_file is None else origin
    if nested:
        origin += " + command-line options"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, origin)) from None
