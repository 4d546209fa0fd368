/** How API values read on the page. */
import type { ConnectionStatus, VerificationOutcome } from "../gql/graphql";

export const STATUS_LABELS: Record<ConnectionStatus, string> = {
  ACTIVE: "Active",
  UNVERIFIED: "Unverified",
  PENDING_AUTHORIZATION: "Waiting for consent",
  INVALID: "Invalid",
  NEEDS_REAUTHORIZATION: "Needs reauthorization",
};

export const OUTCOME_LABELS: Record<VerificationOutcome, string> = {
  OK: "OK",
  INVALID_CREDENTIALS: "Invalid credentials",
  INSUFFICIENT_SCOPES: "Insufficient scopes",
  PROVIDER_UNAVAILABLE: "Provider unavailable",
  NEEDS_REAUTHORIZATION: "Needs reauthorization",
};

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
