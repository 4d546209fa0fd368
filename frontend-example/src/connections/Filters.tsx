import type { AppsQuery, ConnectionStatus } from "../gql/graphql";
import { STATUS_LABELS } from "./format";

export type ListFilters = { app: string; status: ConnectionStatus | "" };

type Props = { apps: AppsQuery["apps"]; value: ListFilters; onChange: (filters: ListFilters) => void };

export function Filters({ apps, value, onChange }: Props) {
  return (
    <div className="filters">
      <label>
        App
        <select value={value.app} onChange={(e) => onChange({ ...value, app: e.target.value })}>
          <option value="">All apps</option>
          {apps.map((app) => (
            <option key={app.key} value={app.key}>
              {app.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select
          value={value.status}
          onChange={(e) => onChange({ ...value, status: e.target.value as ListFilters["status"] })}
        >
          <option value="">All statuses</option>
          {Object.entries(STATUS_LABELS).map(([status, label]) => (
            <option key={status} value={status}>
              {label}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}
