package localgw

// QueuedBytes returns the bytes of outgoing messages queued for connection
// id, and of its client messages waiting for their route (0 when it is gone).
func (g *Gateway) QueuedBytes(id string) (outgoing, inbound int) {
	c := g.lookup(id)
	if c == nil {
		return 0, 0
	}
	return c.queuedBytes(), int(c.inbound.Load())
}
