import type { ConnectionSummaryFragment } from "../gql/graphql";
import { ConnectionRow } from "./ConnectionRow";
import type { Check } from "./useTeamEvents";

type Props = {
  connections: ConnectionSummaryFragment[];
  totalCount: number;
  /** How many connections come before this page. */
  offset: number;
  onPrevious?: () => void;
  onNext?: () => void;
  appNames: Map<string, string>;
  checks: Record<string, Check>;
  onEdit: (connectionId: string) => void;
  onChanged: () => void;
};

export function ConnectionTable(props: Props) {
  const { connections, totalCount, offset, onPrevious, onNext, appNames, checks, onEdit, onChanged } = props;
  if (connections.length === 0 && !onPrevious) return <p className="empty">No connections match.</p>;
  return (
    <>
      <table className="connections">
        <thead>
          <tr>
            <th>App</th>
            <th>Name</th>
            <th>Status</th>
            <th>Last verification</th>
            <th>Token expires</th>
            <th>Used by</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {connections.map((connection) => (
            <ConnectionRow
              key={connection.id}
              connection={connection}
              appName={appNames.get(connection.appKey) ?? connection.appKey}
              check={checks[connection.id]}
              onEdit={() => onEdit(connection.id)}
              onChanged={onChanged}
            />
          ))}
        </tbody>
      </table>
      <nav className="pager" aria-label="Pages">
        <span>
          {offset + 1}–{offset + connections.length} of {totalCount}
        </span>
        <button type="button" onClick={onPrevious} disabled={!onPrevious}>
          Previous page
        </button>
        <button type="button" onClick={onNext} disabled={!onNext}>
          Next page
        </button>
      </nav>
    </>
  );
}
