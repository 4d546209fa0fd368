import type { ConnectionSummaryFragment } from "../gql/graphql";
import { ConnectionRow } from "./ConnectionRow";
import type { Check } from "./useTeamEvents";

type Props = {
  connections: ConnectionSummaryFragment[];
  totalCount: number;
  appNames: Map<string, string>;
  checks: Record<string, Check>;
  onEdit: (connectionId: string) => void;
  onChanged: () => void;
};

export function ConnectionTable({ connections, totalCount, appNames, checks, onEdit, onChanged }: Props) {
  if (connections.length === 0) return <p className="empty">No connections match.</p>;
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
      {totalCount > connections.length && (
        <p className="empty">
          Showing {connections.length} of {totalCount}; narrow the filters to see the others.
        </p>
      )}
    </>
  );
}
