/** An in-memory tracer: records every span it makes, for the tracing tests. */
import { Option, Tracer } from "effect"

export interface RecordedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly kind: Tracer.SpanKind
  readonly attributes: Record<string, unknown>
}

export const makeRecordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const recorded = (): Array<RecordedSpan> =>
    spans.map((span) => ({
      name: span.name,
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: Option.getOrUndefined(span.parent)?.spanId,
      kind: span.kind,
      attributes: Object.fromEntries(span.attributes)
    }))
  return { tracer, recorded }
}
