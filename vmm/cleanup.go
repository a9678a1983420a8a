package vmm

import "errors"

// cleanup collects undo steps while a Machine is built, so a constructor
// that fails half-way releases everything it opened, newest first.
type cleanup struct {
	steps []func() error
}

func (c *cleanup) add(f func() error) { c.steps = append(c.steps, f) }

// run performs the undo steps in reverse order and forgets them.
func (c *cleanup) run() error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		if err := c.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.steps = nil
	return errors.Join(errs...)
}
