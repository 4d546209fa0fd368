import { useState } from "react";
import { useMutation } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage, flowsInUse, type FlowInUse } from "../errors";
import { DeleteConnectionDocument } from "../gql/graphql";

type Props = { connectionId: string; onDeleted: () => void };

type Step = { kind: "idle" } | { kind: "confirm" } | { kind: "inUse"; flows: FlowInUse[] };

/**
 * Delete in two clicks. When flows use the connection, the server refuses the plain delete and
 * names them; a third click deletes anyway.
 */
export function DeleteButton({ connectionId, onDeleted }: Props) {
  const [{ fetching }, remove] = useMutation(DeleteConnectionDocument);
  const [step, setStep] = useState<Step>({ kind: "idle" });
  const [problem, setProblem] = useState<string | null>(null);

  const run = async (confirm: boolean) => {
    setProblem(null);
    const answer = await remove({ id: connectionId, confirm });
    if (!answer.error) return onDeleted();
    const flows = flowsInUse(answer.error);
    if (flows && !confirm) return setStep({ kind: "inUse", flows });
    setProblem(errorMessage(answer.error));
  };

  const cancel = () => {
    setStep({ kind: "idle" });
    setProblem(null);
  };

  return (
    <span className="delete">
      {step.kind === "idle" && (
        <button type="button" onClick={() => setStep({ kind: "confirm" })}>
          Delete
        </button>
      )}
      {step.kind === "confirm" && (
        <button type="button" className="danger" disabled={fetching} onClick={() => run(false)}>
          Confirm delete
        </button>
      )}
      {step.kind === "inUse" && (
        <span className="in-use" role="alert">
          Used by these flows, which will stop working:
          <ul>
            {step.flows.map((flow) => (
              <li key={flow.id}>
                {flow.name} ({flow.status.toLowerCase()})
              </li>
            ))}
          </ul>
          <button type="button" className="danger" disabled={fetching} onClick={() => run(true)}>
            Delete anyway
          </button>
        </span>
      )}
      {step.kind !== "idle" && (
        <button type="button" onClick={cancel}>
          Cancel
        </button>
      )}
      <ErrorText message={problem} />
    </span>
  );
}
