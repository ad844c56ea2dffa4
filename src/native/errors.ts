/** fg_status codes (fastgen.h) and the Error a failed native call becomes. */

export type FastgenErrorCode =
  | "invalid_argument"
  | "not_found"
  | "unsupported"
  | "out_of_memory"
  | "device"
  | "internal";

/** fg_status values, as in fastgen.h. */
export const Status = {
  OK: 0,
  INVALID_ARGUMENT: 1,
  NOT_FOUND: 2,
  UNSUPPORTED: 3,
  OUT_OF_MEMORY: 4,
  DEVICE: 5,
  INTERNAL: 6,
} as const;

const CODES: Record<number, FastgenErrorCode> = {
  1: "invalid_argument",
  2: "not_found",
  3: "unsupported",
  4: "out_of_memory",
  5: "device",
  6: "internal",
};

/** A libfastgen call that returned a status other than FG_OK; `message` is fg_last_error(). */
export class FastgenError extends Error {
  readonly status: number;
  readonly code: FastgenErrorCode;

  constructor(status: number, message: string) {
    super(message || `libfastgen failed with status ${status}`);
    this.name = "FastgenError";
    this.status = status;
    this.code = CODES[status] ?? "internal";
  }
}
