import type { ConnectionStatus } from "../gql/graphql";
import { STATUS_LABELS } from "./format";

export function StatusBadge({ status }: { status: ConnectionStatus }) {
  return <span className={`badge badge-${status.toLowerCase()}`}>{STATUS_LABELS[status]}</span>;
}
