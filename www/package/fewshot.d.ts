// The public API of the Fewshot package (fewshot.js), written by hand.

/** What a caller does about an error: the same kinds the engine gives (src/error.rs). */
export type ErrorKind = "bad-input" | "stopped" | "gpu-lost" | "storage" | "internal";

export declare const Kind: Readonly<{
  BadInput: "bad-input";
  Stopped: "stopped";
  GpuLost: "gpu-lost";
  Storage: "storage";
  Internal: "internal";
}>;

/** Every error the package rejects with. */
export declare class FewshotError extends Error {
  constructor(kind: ErrorKind, message: string);
  readonly kind: ErrorKind;
}

/** One class and how likely the image is to be of it. */
export interface Prediction {
  label: string;
  probability: number;
}

/** How unlike the model's training photos an image is ("none of these"): its best view's mean
 * cosine distance to the nearest training photos, against the model's threshold. */
export interface Unfamiliarity {
  score: number;
  threshold: number;
  unfamiliar: boolean;
  /** Unfamiliar, but only just over the threshold, where a few photos of the kinds the model
   * learned fall too: "probably none of these". */
  nearLine: boolean;
}

/** Where the model saw the best class: 7x7 values in [0, 1], row by row from the top left of
 * the square the backbone saw (the centre crop, or the whole image padded: `framing`). */
export interface Heatmap {
  values: number[];
  framing: "crop" | "pad";
  width: number;
  height: number;
}

export interface Verdict {
  predictions: Prediction[];
  unfamiliar: Unfamiliarity | null;
  heatmap: Heatmap;
}

/** Below this probability no class is a confident answer. */
export declare const CONFIDENT: number;

/** What a classification means for a person: "unfamiliar" (none of these), "confident", or
 * "unsure" (between classes), with the most likely class. */
export declare function verdict(result: { predictions: Prediction[]; unfamiliar: Unfamiliarity | null }): {
  kind: "unfamiliar" | "confident" | "unsure";
  label: string;
  probability: number;
  /** An "unfamiliar" verdict only just over the line: "probably none of these". */
  nearLine: boolean;
};

/** One way a photo is shown to the backbone. */
export interface View {
  framing: "crop" | "pad";
  flip: boolean;
  zoom: number;
}

/** Cross-validated figures of a model. */
export interface Validation {
  folds: number;
  photos: number;
  evaluation: {
    accuracy: number;
    perClass: { label: string; precision: number; recall: number; support: number }[];
    confusion: number[][];
  };
  accuracyRange: [number, number];
  recallRanges: [number, number][];
}

/** What a model file says about itself. */
export interface ModelInfo {
  labels: string[];
  backboneSha256: string;
  preprocess: View;
  views: View[];
  hiddenUnits: number;
  unfamiliarThreshold: number | null;
  validation: Validation | null;
  penalty: number;
  photosPerClass: number[];
  createdUnixMs: number;
}

/** Anything predict() can read. */
export type ImageInput = HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | HTMLVideoElement | ImageBitmap | ImageData | Blob;

export interface Model {
  /** The classes, in the model's order. */
  readonly labels: string[];
  readonly info: ModelInfo;
  /** Every class with its probability, most likely first. */
  predict(input: ImageInput): Promise<Prediction[]>;
  /** The predictions, "none of these", and where the model looked. */
  classify(input: ImageInput): Promise<Verdict>;
  /** Stop the model's worker. */
  dispose(): void;
}

export interface LoadOptions {
  /** The backbone's URL; default `weights/mobilenet_v2_1.0_224_quant.tflite` beside the page. */
  weights?: string | URL;
  /** Where the backbone runs; "auto" prefers a hardware GPU. */
  device?: "auto" | "webgpu" | "cpu";
  /** Called with the fraction of the weights downloaded. */
  onProgress?: (fraction: number) => void;
}

/** Load a model exported from the Fewshot page, and the backbone it needs. */
export declare function load(model: string | URL | Blob | ArrayBuffer | Uint8Array, options?: LoadOptions): Promise<Model>;
